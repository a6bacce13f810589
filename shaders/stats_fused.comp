// stats_fused.comp - the band statistics of gpu_deconv/core/stats.py (b1, b2, b3, hh per 16 x 16 tile) in ONE
// compute dispatch, instead of the six atrous.frag passes and stats_reduce.frag (gpu_deconv/gl/stats_gpu.py).
//
// The cascade G1 = A_1 x, G2 = A_2 G1, G3 = A_4 G2 (separable [1/4, 1/2, 1/4] dilated 1, 2, 4, mirror
// boundary) equals the separable lowpasses of x with the combined taps of radii 1, 3, 7
// (gpu_deconv/core/comb.py atrous_lowpass_taps): the half-sample symmetric extension of a row is 2n-periodic
// and even, a symmetric kernel keeps it so, so mirroring between the cascade's steps changes nothing. They
// are three levels of the sliding-window strip of mixture_fused.comp (gpu_deconv/gl/compute.py strip_body);
// a fourth level with taps [0, 1, 0] keeps x itself in the window for the vertical 3-tap ay. Per pixel:
//
//     G_k = sum_{j ascending} g_k[j] H_k(y + j),   H_k(y') = sum_{i ascending} g_k[i] x(mirror(x + i), y')
//     ax = H_1(y)   (A_1 along x),    ay = 1/4 x(y - 1) + 1/2 x(y) + 1/4 x(y + 1)
//     b1 = x - G1,  b2 = G1 - G2,  b3 = G2 - G3,  hh = ((x - ax) - ay) + G1
//
// ax, G1 and ay round exactly like the fragment passes; G2 and G3 sum their taps in another order than the
// cascade (a few ulp of G; the tests bound the tile sums by 1e-4 relative, as for the fragment path).
//
// Sums: an invocation owns COLS columns (COLS divides 16, so a column group never straddles a tile) and a
// strip of ROWS rows (a multiple of 16) starting at a tile row; it adds the channel-mean squares of its
// columns row by row (row partial sums keep the fp32 sums short) into one vec4 per tile and, at the tile's
// last row, stores it: one RGBA32F texel per (column group, tile row). The CPU adds a tile's 16 / COLS
// groups in float64. No atomics, no shared memory (both slow on CPU rasterisers). Pixels outside the
// region of interest [u_roi_origin, u_roi_end) count nothing; a group that starts past the region's right
// edge stores nothing (the CPU leaves it out). The first column and row of the strip are generated
// (gpu_deconv/gl/stats_gpu.py): u_origin + tile index * u_step, so a dispatch can cover every tile or
// only every s-th tile column and row (u_step = 16 s; ROWS = 16 then).
// Defines: LOCAL_X, ROWS, COLS, COLOUR (1 or 3), MIRROR_PERIODIC (region shorter than 7 px on an axis).
#version 430
//@defines
#extension GL_ARB_gpu_shader5 : enable
//@include common.glsl

layout(local_size_x = LOCAL_X, local_size_y = 1, local_size_z = 1) in;

uniform sampler2D u_src;
uniform vec2 u_src_inv;
uniform ivec2 u_region;
uniform ivec2 u_origin;    // first pixel of the first tile dispatched (the region of interest's origin)
uniform ivec2 u_step;      // pixels from one dispatched tile to the next, along x and y
uniform ivec2 u_roi_end;
uniform vec4 u_taps[62];
layout(binding = 0, rgba32f) writeonly uniform image2D u_out;

vec4 g_row = vec4(0.0);    // this row's sums over the invocation's columns
vec4 g_tile = vec4(0.0);   // this tile's sums over its rows so far

#if COLOUR == 1
float chan_mean_sq(float v) { return v * v; }
#else
float chan_mean_sq(vec3 v) { return (v.r * v.r + v.g * v.g + v.b * v.b) / 3.0; }
#endif

void main() {
//@body
}
