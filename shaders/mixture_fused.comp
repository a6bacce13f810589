// mixture_fused.comp - one mixture stage in ONE compute dispatch: the H blurs of every level, the V blurs
// and the combination, with no intermediate texture (gpu_deconv/gl/compute.py generates the body).
//
// A stage (gpu_deconv/core/plan.py) is  out = d0*base + sum_k d_k (g_k (x) g_k) * src,  k = 1..K <= 7.
// Each invocation produces a vertical strip of ROWS output pixels of one column x:
//
//   1. for the ROWS + 2R source rows the strip reaches (R = the stage radius), fetch the row's texels
//      at the horizontal offsets any level uses - once - and form every level's horizontal sum
//          H_k(x, m(y)) = sum_{i ascending} g_k[i] * src(mirror(x + i), m(y))
//      in registers (m = the mirror rule of common.glsl, so H_k of an out-of-image row is exactly the
//      H_k of the row it mirrors to - the value the fragment V pass fetches there);
//   2. precision 16: round each H_k to half precision with the driver's rounding (HALF_TZ: toward
//      zero, what Mesa llvmpipe's RGBA16F store does; HALF_RNE: to nearest even, what GPUs do), so
//      the values equal those the fragment path's RGBA16F H targets hold;
//   3. per output row: acc = d0*base; then for k = 1..K in order acc += d_k * s_k with
//      s_k = sum_{j ascending} g_k[j] * H_k(row + j) - the order of gpu_deconv/core/reference.py;
//   4. optional sRGB encode (ENCODE_SRGB), fp16 rounding of a non-final stage's output (STORE_HALF),
//      alpha copied from base's centre texel (HAS_ALPHA), imageStore at u_origin + (x, y) for the rows
//      inside the region only (the image may be a caller's texture larger than the region).
//
// Texel fetches per output pixel: (ROWS + 2R) * n_offsets / ROWS + 1 instead of the fragment path's
// n_offsets + 1 + sum_k n_offsets_k and K intermediate writes and reads; the price is registers (the
// H values of a strip) and a program per (shape, ROWS).
//
// SHARED_TILE: the workgroup (LOCAL_X invocations side by side) first copies the source window its
// strips read - (LOCAL_X + 2R) x (ROWS + 2R) texels, mirrored - into shared memory, then step 1 reads
// shared memory instead of the texture: one texture fetch per window texel instead of n_offsets.
//
// Reading: textures through the executor's NEAREST sampler at texel centres (FETCH, common.glsl), so
// the input may be any format; the base (chain input) and src (input or previous stage) may be the
// same texture. PRECISE (common.glsl) forbids FMA contraction, as in the fragment passes.
// Defines: LOCAL_X, ROWS, COLOUR (1 or 3), OUT_FORMAT (image format qualifier of u_out), HAS_ALPHA,
// ENCODE_SRGB, HALF_TZ | HALF_RNE (precision 16: round H), STORE_HALF (round the output too),
// MIRROR_PERIODIC, SHARED_TILE, TILE_W, TILE_H.
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

#ifdef SHARED_TILE
shared COL s_tile[TILE_H * TILE_W];
#define SRC_AT(tx, ty) s_tile[(ty) * TILE_W + (tx)]
#endif

void main() {
//@body
}
