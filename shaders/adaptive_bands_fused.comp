// adaptive_bands_fused.comp - passes 1 and 2 of the adaptive filter (gpu_deconv/core/adaptive.py) in ONE
// compute dispatch: the horizontal sums of mixture_h.frag and the energy / noise band of adaptive_bands.frag,
// with no intermediate texture (the fragment pair writes K + 1 fp32 lowpass sums per pixel - at 1080p RGB
// five RGBA32F targets, 166 MB - and reads them back).
//
// The strip walk is mixture_fused.comp's (gpu_deconv/gl/compute.py strip_body): an invocation owns COLS
// columns x0.. and walks down ROWS rows with a sliding window of H rows in registers. Per output pixel:
//
//     H_k(x, y') = sum_{i ascending} g_k[i] x(mirror(x + i), y')     fp32, as pass 1's targets hold it
//     s_k = sum_{j ascending} g_k[j] H_k(x, mirror(y + j))            (G_k, and hh for the last level)
//     L_1 = x - s_1,   L_k = s_{k-1} - s_k,   e, q                     exactly as adaptive_bands.frag
//
// then STORE (half rounding where emulated) and packHalf2x16 of (e, q) - imageStore into the e/q target
// that pass 3 reads (BandLayout of zero bands: one R32UI texel, or RG at precision 32). The energy pair is
// compiled in (gpu_deconv/gl/adaptive.py band_outputs), so the lowpasses past it are dead code. The bands
// themselves are formed again, in registers, by adaptive_apply_fused.comp (pass 5). Bit-identical to the
// fragment passes (tests/test_adaptive_gl.py runs every case on both paths).
// Defines: LOCAL_X, ROWS, COLS, COLOUR (1 or 3), MIRROR_PERIODIC, EMULATE_FP16; the image declaration at DECLS.
#version 430
//@defines
#extension GL_ARB_gpu_shader5 : enable
//@include common.glsl

layout(local_size_x = LOCAL_X, local_size_y = 1, local_size_z = 1) in;

uniform sampler2D u_src;
uniform vec2 u_src_inv;
uniform ivec2 u_region;
uniform vec4 u_taps[62];
//@decls

void main() {
//@body
}
