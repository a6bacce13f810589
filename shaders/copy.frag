// copy.frag - one texel in, one texel out: identity, sRGB decode, sRGB encode, or decode + encode.
//
//     out.colour = [ENCODE_SRGB: linear_to_srgb] ( [DECODE_SRGB: srgb_to_linear] ( src.colour ) )
//     out.alpha  = src.alpha                                  (never transformed: alpha is not sRGB)
//
// Uses: decoding an 8/16-bit sRGB upload into the float linear texture the filter passes read; the
// identity plan (no stage, one pass); the benchmark's passthrough unit. Destination addressing as in
// mixture_v.frag: the texel read is gl_FragCoord - u_origin.
//
// DECODE_LUT (integer sources): instead of the formula, the code = round(v * u_lut_max) indexes a
// table of gpu_deconv.colour.decode_lut(bits) (256 x 1 for 8 bits, 256 x 256 for 16), so the decoded
// values are bit-identical to the NumPy reference's. That matters with fp16 intermediates: a 1e-7
// difference from GLSL's pow() can flip an fp16 rounding, which the filter gain then amplifies.
// Defines: COLOUR (1 or 3), DECODE_SRGB, DECODE_LUT (with DECODE_SRGB), ENCODE_SRGB.
#version 330 core
//@defines
//@include common.glsl
//@include srgb.glsl

uniform sampler2D u_src;
uniform vec2 u_src_inv;
uniform ivec2 u_origin;
#ifdef DECODE_LUT
uniform sampler2D u_lut;
uniform float u_lut_max;

float lut_decode(float v) {
    int code = int(v * u_lut_max + 0.5);
    return texelFetch(u_lut, ivec2(code & 255, code >> 8), 0).r;
}
#endif

out vec4 o_color;

void main() {
    vec4 v = FETCH(u_src, ivec2(gl_FragCoord.xy) - u_origin, u_src_inv);
    COL col = CSW(v);
#if defined(DECODE_SRGB) && defined(DECODE_LUT)
#if COLOUR == 1
    col = lut_decode(col);
#else
    col = vec3(lut_decode(col.r), lut_decode(col.g), lut_decode(col.b));
#endif
#elif defined(DECODE_SRGB)
    col = srgb_to_linear(col);
#endif
#ifdef ENCODE_SRGB
    col = linear_to_srgb(col);
#endif
    o_color = COL_TO_VEC4(col, v.a);
}
