// adaptive_bands_fused.comp - passes 1 and 2 of the adaptive filter (gpu_deconv/core/adaptive.py) in ONE
// compute dispatch: the horizontal sums of mixture_h.frag and the bands / energies of adaptive_bands.frag,
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
// then STORE (half rounding where emulated) and, for halved layouts, packHalf2x16 pairs - imageStore into
// the same targets, with the same lanes (BandLayout), as the fragment pass writes: passes 3-5 run
// unchanged and the result is bit-identical (tests/test_adaptive_fused.py).
// Defines: LOCAL_X, ROWS, COLS, COLOUR (1 or 3), MIRROR_PERIODIC, EMULATE_FP16, ENERGY_SCALE.
#version 430
//@defines
#extension GL_ARB_gpu_shader5 : enable
//@include common.glsl

layout(local_size_x = LOCAL_X, local_size_y = 1, local_size_z = 1) in;

uniform sampler2D u_src;
uniform vec2 u_src_inv;
uniform ivec2 u_region;
uniform vec4 u_taps[62];
uniform float u_ew[8];  // 1 for the two energy bands, 0 for the others (as in adaptive_bands.frag)
//@decls

void main() {
//@body
}
