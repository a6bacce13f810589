// mixture_fused.comp - one mixture stage in ONE compute dispatch: the H blurs of every level, the V blurs
// and the combination, with no intermediate texture (gpu_deconv/gl/compute.py generates the body).
//
// A stage (gpu_deconv/core/plan.py) is  out = d0*base + sum_k d_k (g_k (x) g_k) * src,  k = 1..K <= 7,
// each g_k symmetric of radius r_k <= R. An invocation owns a block of COLS columns x0.. and walks down
// ROWS rows y0.. of it with a sliding window of H rows in registers (the generated body):
//
//   prologue: form the H rows of source rows y0 - R .. y0 + R - 1;
//   per output row y = y0 .. y0 + ROWS - 1:
//     1. fetch source row y + R at the block's columns x0 - R .. x0 + COLS - 1 + R - each texel once -
//        and form, for every level and column of the block,
//            H_k(x, m(y + R)) = sum_{i ascending} g_k[i] * src(mirror(x + i), m(y + R))
//        (m = the mirror rule of common.glsl: H_k of an out-of-image row is exactly the H_k of the row
//        it mirrors to - the value the fragment V pass fetches there);
//     2. precision 16: round each new H_k to half precision with the driver's rounding (HALF_TZ:
//        toward zero, what Mesa llvmpipe's RGBA16F store does; HALF_RNE: to nearest even, what GPUs
//        do), so the values equal those the fragment path's RGBA16F H targets hold;
//     3. acc = d0*base(x, y); then for k = 1..K in order acc += d_k * s_k with
//        s_k = sum_{j ascending} g_k[j] * H_k(x, m(y + j)) from the window - the order of
//        gpu_deconv/core/reference.py;
//     4. optional sRGB encode (generated when asked), half rounding of a non-final stage's output,
//        alpha copied from base's texel (bit-exact), imageStore at u_origin + (x, y) - only inside the
//        region (the image may be a caller's texture larger than the region);
//     5. shift the window by one row.
//
// Texel fetches per output pixel: (COLS + 2R) / COLS * (1 + 2R / ROWS) + 1, against the fragment path's
// 2R + 1 + 1 + sum_k (2 r_k + 1) plus K intermediate writes and reads.
//
// Reading: textures through the executor's NEAREST sampler at texel centres (FETCH, common.glsl), so
// the input may be any format; the base (chain input) and src (input or previous stage) may be the
// same texture. PRECISE (common.glsl) forbids FMA contraction, as in the fragment passes.
// Defines: LOCAL_X, ROWS, COLS, COLOUR (1 or 3), OUT_FORMAT (image format qualifier of u_out),
// HALF_TZ | HALF_RNE (precision 16), MIRROR_PERIODIC (region smaller than R on an axis).
#version 430
//@defines
#extension GL_ARB_gpu_shader5 : enable
//@include common.glsl
//@include srgb.glsl

layout(local_size_x = LOCAL_X, local_size_y = 1, local_size_z = 1) in;

uniform sampler2D u_src;
uniform vec2 u_src_inv;
uniform sampler2D u_base;
uniform vec2 u_base_inv;
uniform ivec2 u_region;
uniform ivec2 u_origin;
uniform vec4 u_taps[62];
uniform float u_d[8];
layout(binding = 0, OUT_FORMAT) writeonly uniform image2D u_out;

#if defined(HALF_TZ)
// float32 -> float16 -> float32 rounding toward zero, clamped to +-65504 (Mesa llvmpipe's RGBA16F store)
vec3 half_round(vec3 x) {
    vec3 a = abs(x);
    vec3 normal = uintBitsToFloat(floatBitsToUint(a) & 0xFFFFE000u);   // keep 10 mantissa bits
    vec3 sub = floor(a * 16777216.0) * 5.9604644775390625e-8;           // multiples of 2^-24
    vec3 r = min(mix(normal, sub, lessThan(a, vec3(6.103515625e-05))), vec3(65504.0));
    return mix(r, -r, lessThan(x, vec3(0.0)));
}
#elif defined(HALF_RNE)
// float32 -> float16 -> float32 rounding to nearest, ties to even; overflow to +-inf (IEEE, numpy)
vec3 half_round(vec3 x) {
    vec3 a = abs(x);
    uvec3 u = floatBitsToUint(a);
    u = (u + 0xFFFu + ((u >> 13) & 1u)) & 0xFFFFE000u;                   // round 23 -> 10 mantissa bits
    vec3 sub = roundEven(a * 16777216.0) * 5.9604644775390625e-8;       // multiples of 2^-24
    vec3 r = mix(uintBitsToFloat(u), sub, lessThan(a, vec3(6.103515625e-05)));
    r = mix(r, vec3(uintBitsToFloat(0x7F800000u)), greaterThan(r, vec3(65504.0)));
    return mix(r, -r, lessThan(x, vec3(0.0)));
}
#endif
#if defined(HALF_TZ) || defined(HALF_RNE)
float half_round(float x) { return half_round(vec3(x)).x; }
#define HROUND(x) half_round(x)
#else
#define HROUND(x) (x)
#endif

void main() {
//@body
}
