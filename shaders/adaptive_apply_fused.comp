// adaptive_apply_fused.comp - pass 5 of the adaptive filter with its bands formed in registers: one compute
// dispatch that needs no band texture (gpu_deconv/gl/adaptive.py, AdaptiveExecutor with a ComputeExecutor).
//
// The strip walk is mixture_fused.comp's (gpu_deconv/gl/compute.py strip_body): an invocation owns COLS
// columns and walks down ROWS rows with a sliding window of H rows in registers. Per output pixel p it forms
//
//     s_k = sum_{j ascending} g_k[j] H_k(x, mirror(y + j)),   H_k fp32 as pass 1's targets hold it
//     L_1 = STORE(x - s_1),   L_k = STORE(s_{k-1} - s_k)      (STORE: the rounding of pass 2's targets)
//
// - exactly the values adaptive_bands.frag stores and adaptive_apply.frag fetches - into g_L, then calls
// adaptive_pixel(p) (adaptive_apply.glsl: level, table, acc = x + sum c_k L_k, limiter, encode, alpha) and
// imageStores the result at u_origin + p inside the region. Bit-identical to the fragment passes 2 + 5 on
// llvmpipe (tests/test_adaptive_gl.py runs every case on both paths). The energy and noise band that
// passes 3-4 need come from a cheaper dispatch (adaptive_bands_fused.comp with e and q only).
// Defines: those of adaptive_apply.glsl, plus LOCAL_X, ROWS, COLS, OUT_FORMAT (image format of u_out),
// EMULATE_FP16 (precision 16 on a CPU rasteriser: STORE rounds as pass 2's emulated targets do).
#version 430
//@defines
#extension GL_ARB_gpu_shader5 : enable
//@include common.glsl
//@include srgb.glsl
//@include limiter.glsl

layout(local_size_x = LOCAL_X, local_size_y = 1, local_size_z = 1) in;

uniform sampler2D u_src;   // the linear input again (the same texture as u_base), for the window's rows
uniform vec2 u_src_inv;
uniform vec4 u_taps[62];
layout(binding = 0, OUT_FORMAT) writeonly uniform image2D u_out;
COL g_L[K];                // the pixel's bands, set by the walk before adaptive_pixel() reads them

//@include adaptive_apply.glsl

void main() {
//@walk
}
