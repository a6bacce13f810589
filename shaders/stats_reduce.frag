// stats_reduce.frag - per-tile band energies: one output texel per block x block tile (RGBA32F).
//
// With x the linear image (colour channels only), ax = A_1 along x, ay = A_1 along y, and the a-trous
// lowpasses G1..G3 from atrous.frag (see gpu_deconv/core/stats.py for the definitions):
//
//     b1 = x - G1,   b2 = G1 - G2,   b3 = G2 - G3,   hh = ((x - ax) - ay) + G1
//     out = sum over the tile's pixels of  ( <b1^2>, <b2^2>, <b3^2>, <hh^2> )
//
// where <.> is the mean over the colour channels. ay is not a texture: it is rebuilt here from the
// two vertical neighbours of x (1/4, 1/2, 1/4 ascending, like the reference), so the pass costs
// 7 fetches per pixel. The fragment at grid cell b sums the pixels [o + b*block, min(o + (b+1)*block,
// roi_end)) row by row (row partial sums keep the fp32 sums short); the statistics region of interest
// lets tiled processing count only a tile's interior, aligned to the global block grid, so the tiles'
// grids concatenate into exactly the untiled grid. The grid is tiny (120 x 68 at 1080p) and is the only
// thing read back - never the frame.
// Defines: COLOUR (1 or 3).
#version 330 core
//@defines
#extension GL_ARB_gpu_shader5 : enable
//@include common.glsl

uniform sampler2D u_x;
uniform vec2 u_x_inv;
uniform sampler2D u_ax;
uniform sampler2D u_g1;
uniform sampler2D u_g2;
uniform sampler2D u_g3;
uniform vec2 u_g_inv;
uniform ivec2 u_region;
uniform ivec2 u_roi_origin;
uniform ivec2 u_roi_end;
uniform int u_block;

out vec4 o_sums;

#if COLOUR == 1
float chan_mean_sq(float v) { return v * v; }
#else
float chan_mean_sq(vec3 v) { return (v.r * v.r + v.g * v.g + v.b * v.b) / 3.0; }
#endif

void main() {
    ivec2 cell = ivec2(gl_FragCoord.xy);
    ivec2 p0 = u_roi_origin + cell * u_block;
    ivec2 p1 = min(p0 + u_block, u_roi_end);
    vec4 total = vec4(0.0);
    for (int y = p0.y; y < p1.y; ++y) {
        int ym = mirror_index(y - 1, u_region.y);
        int yp = mirror_index(y + 1, u_region.y);
        vec4 row = vec4(0.0);
        for (int x = p0.x; x < p1.x; ++x) {
            ivec2 p = ivec2(x, y);
            COL xc = CSW(FETCH(u_x, p, u_x_inv));
            PRECISE COL ay = 0.25 * CSW(FETCH(u_x, ivec2(x, ym), u_x_inv));
            ay += 0.5 * xc;
            ay += 0.25 * CSW(FETCH(u_x, ivec2(x, yp), u_x_inv));
            COL ax = CSW(FETCH(u_ax, p, u_g_inv));
            COL g1 = CSW(FETCH(u_g1, p, u_g_inv));
            COL g2 = CSW(FETCH(u_g2, p, u_g_inv));
            COL g3 = CSW(FETCH(u_g3, p, u_g_inv));
            PRECISE COL hh = xc - ax;
            hh -= ay;
            hh += g1;
            row += vec4(chan_mean_sq(xc - g1), chan_mean_sq(g1 - g2), chan_mean_sq(g2 - g3), chan_mean_sq(hh));
        }
        total += row;
    }
    o_sums = total;
}
