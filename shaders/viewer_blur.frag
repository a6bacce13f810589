// viewer_blur.frag - one separable pass of the viewer's "simulate" degradation: blur (and, in the vertical
// pass, white noise), in linear light, exactly as gpu_deconv.core.chart.blur_and_noise does on the CPU.
//
//     AXIS 0:  out(x, y) = sum_{i = -R..R} taps[i + R] * src(mirror(x + i), y)
//     AXIS 1:  out(x, y) = sum_{i = -R..R} taps[i + R] * src(x, mirror(y + i)) + noise * N(p + offset)
//
// mirror = mirror_index_periodic (mirror.glsl: edge pixel repeated, period 2n - exact for any radius, so a
// blur wider than a tiny image still matches the reference). N is a stored standard-normal texture (NumPy's
// default_rng(seed).standard_normal), shifted per video frame by u_noise_offset instead of redrawn.
// ENCODE writes sRGB codes (srgb.glsl) to stand in for an 8-bit source. Alpha is copied from the centre.
// Defines: RADIUS (taps = 2 RADIUS + 1; unrolled on llvmpipe), AXIS (0 or 1), ENCODE.
#version 330 core
//@defines
//@include mirror.glsl
//@include srgb.glsl

uniform sampler2D u_src;
uniform float u_taps[2 * RADIUS + 1];
#if AXIS == 1
uniform sampler2D u_noise_tex;
uniform float u_noise;
uniform ivec2 u_noise_offset;
#endif
out vec4 o_color;

void main() {
    ivec2 size = textureSize(u_src, 0);
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec3 acc = vec3(0.0);
    for (int i = -RADIUS; i <= RADIUS; ++i) {
#if AXIS == 0
        ivec2 q = ivec2(mirror_index_periodic(p.x + i, size.x), p.y);
#else
        ivec2 q = ivec2(p.x, mirror_index_periodic(p.y + i, size.y));
#endif
        acc += u_taps[i + RADIUS] * texelFetch(u_src, q, 0).rgb;
    }
    float alpha = texelFetch(u_src, p, 0).a;
#if AXIS == 1
    acc += u_noise * texelFetch(u_noise_tex, (p + u_noise_offset) % size, 0).rgb;
#endif
#ifdef ENCODE
    acc = linear_to_srgb(acc);
#endif
    o_color = vec4(acc, alpha);
}
