// viewer_display.frag - the viewer's view: "before" left of the divider, "after" right of it, zoomed and
// panned, into the view rectangle of the window.
//
//     u = (p - image_origin) / zoom         (p: view pixel, y down; u: image pixel)
//     colour = MAGNIFY ? texelFetch(tex, floor(u))      nearest neighbour when magnified (pixel peeping)
//                      : texture(tex, u / size)          bilinear when minified
//
// Both textures hold display-ready sRGB codes (the engine's last pass encodes "after"), so no per-pixel
// pow() runs here - which matters on software rasterisers. Outside the image: the background colour.
// Defines: MODE 0 split / 1 before / 2 after, MAGNIFY (llvmpipe executes both sides of a branch, so the
// choices are compile-time).
#version 330 core
//@defines

uniform sampler2D u_before;
uniform sampler2D u_after;
uniform float u_fb_height;       // framebuffer height (GL y is up)
uniform vec2 u_view_origin;      // view rectangle top-left, framebuffer px, y down
uniform vec2 u_image_origin;     // image top-left inside the view
uniform float u_zoom;
uniform float u_divider;         // view x of the divider; left shows before
uniform vec3 u_background;
out vec4 o_color;

vec3 fetch(sampler2D tex, vec2 u, vec2 size) {
#ifdef MAGNIFY
    return texelFetch(tex, ivec2(floor(u)), 0).rgb;
#else
    return texture(tex, u / size).rgb;
#endif
}

void main() {
    vec2 p = vec2(gl_FragCoord.x, u_fb_height - gl_FragCoord.y) - u_view_origin;   // view px, y down
    vec2 u = (p - u_image_origin) / u_zoom;
    vec2 size = vec2(textureSize(u_after, 0));
    if (u.x < 0.0 || u.y < 0.0 || u.x >= size.x || u.y >= size.y) {
        o_color = vec4(u_background, 1.0);
        return;
    }
#if MODE == 0
    vec3 c = p.x < u_divider ? fetch(u_before, u, size) : fetch(u_after, u, size);
#elif MODE == 1
    vec3 c = fetch(u_before, u, size);
#else
    vec3 c = fetch(u_after, u, size);
#endif
    o_color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
