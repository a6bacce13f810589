// viewer_overlay.frag - a false-colour map blended over the viewer's image view (the level map A(x) of the
// adaptive mode, or the blind per-cell sigma estimates).
//
//     u = (p - image_origin) / zoom                  image pixel under view pixel p (as viewer_display.frag)
//     m = texelFetch(map, floor(u / cell))           the map's texel covering it (cell: image px per texel)
//     t = clamp((m.r - lo) * inv_range, 0, 1)        position on the colour scale
//     colour = viridis(t), alpha = u_alpha           (TILES: times m.g, 0 where a cell has no usable edge)
//
// Blended by the fixed-function stage (SRC_ALPHA, ONE_MINUS_SRC_ALPHA) over the display-ready sRGB codes
// the display pass wrote; viridis is defined on display codes, so nothing is encoded here. Outside the
// image nothing is drawn. The colormap is the degree-6 polynomial fit of matplotlib's viridis by
// Matt Zucker (shadertoy WlfXRN, CC0), mirrored in NumPy by gpu_deconv.apps.viewer.gpu.viridis.
// Defines: TILES (the map's g channel is a 0/1 "usable" flag).
#version 330 core
//@defines

uniform sampler2D u_map;
uniform float u_fb_height;       // framebuffer height (GL y is up)
uniform vec2 u_view_origin;      // view rectangle top-left, framebuffer px, y down
uniform vec2 u_image_origin;     // image top-left inside the view
uniform float u_zoom;
uniform vec2 u_image_size;       // image size, px
uniform float u_cell;            // image px per map texel
uniform float u_lo;              // map value at the bottom of the colour scale
uniform float u_inv_range;       // 1 / (hi - lo)
uniform float u_alpha;           // overlay opacity
out vec4 o_color;

vec3 viridis(float t) {
    const vec3 c0 = vec3(0.2777273272234177, 0.005407344544966578, 0.3340998053353061);
    const vec3 c1 = vec3(0.1050930431085774, 1.404613529898575, 1.384590162594685);
    const vec3 c2 = vec3(-0.3308618287255563, 0.214847559468213, 0.09509516302823659);
    const vec3 c3 = vec3(-4.634230498983486, -5.799100973351585, -19.33244095627987);
    const vec3 c4 = vec3(6.228269936347081, 14.17993336680509, 56.69055260068105);
    const vec3 c5 = vec3(4.776384997670288, -13.74514537774601, -65.35303263337234);
    const vec3 c6 = vec3(-5.435455855934631, 4.645852612178535, 26.3124352495832);
    return c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6)))));
}

void main() {
    vec2 p = vec2(gl_FragCoord.x, u_fb_height - gl_FragCoord.y) - u_view_origin;   // view px, y down
    vec2 u = (p - u_image_origin) / u_zoom;
    if (u.x < 0.0 || u.y < 0.0 || u.x >= u_image_size.x || u.y >= u_image_size.y) {
        discard;
    }
    ivec2 last = textureSize(u_map, 0) - 1;
    vec4 m = texelFetch(u_map, min(ivec2(floor(u / u_cell)), last), 0);
    float t = clamp((m.r - u_lo) * u_inv_range, 0.0, 1.0);
    float a = u_alpha;
#ifdef TILES
    a *= m.g;
#endif
    o_color = vec4(clamp(viridis(t), 0.0, 1.0), a);
}
