#version 330 core
// cas.frag - CAS-style contrast-adaptive sharpener, one pass (written for gpu_deconv's benchmarks; a peer,
// not part of the engine). NumPy mirror: benchmarks/peers/sharpeners.py::cas_reference.
//
// Taps: the 3x3 neighbourhood of the output pixel e, mirror boundary (edge pixel repeated, integer
// mirror_index + texelFetch, exactly like the engine's passes):
//
//     a b c
//     d e f        cross = {b, d, e, f, h}, box = the cross plus the corners {a, c, g, i}
//     g h i
//
// Per colour channel (linear light, float in / float out):
//   mn = (min(cross) + min(box)) / 2,  mx = (max(cross) + max(box)) / 2   (a softened local min / max)
//   amp = sqrt(clamp(min(mn, 1 - mx) / mx, 0, 1))
//         - the headroom left below 0 and above 1, relative to the local maximum: ~1 in flat, mid-grey,
//           low-contrast areas, -> 0 next to strong edges and near black / white, so strong edges are not
//           over-sharpened into halos (mx <= 0 gives 0: nothing to sharpen);
//   w = amp * peak,  peak = -1 / (8 - 3 * sharpness)   (uniform u_peak, computed on the CPU; sharpness in
//       [0, 1] gives peak in [-1/8, -1/5], so the denominator below stays >= 1/5)
//   out = (e + w * (b + d + f + h)) / (1 + 4 w)
//         - a normalised 5-tap cross filter: the weights sum to 1, so flat areas are left unchanged.
// Alpha is copied from the centre texel.

uniform sampler2D u_src;
uniform float u_peak;
out vec4 frag;

int mirror_index(int p, int n) {
    p = p < 0 ? -1 - p : p;
    return p >= n ? 2 * n - 1 - p : p;
}

vec3 tap(ivec2 p, ivec2 size, int dx, int dy) {
    ivec2 q = ivec2(mirror_index(p.x + dx, size.x), mirror_index(p.y + dy, size.y));
    return texelFetch(u_src, q, 0).rgb;
}

void main() {
    ivec2 size = textureSize(u_src, 0);
    ivec2 p = ivec2(gl_FragCoord.xy);
    vec4 centre = texelFetch(u_src, p, 0);
    vec3 e = centre.rgb;
    vec3 a = tap(p, size, -1, -1), b = tap(p, size, 0, -1), c = tap(p, size, 1, -1);
    vec3 d = tap(p, size, -1, 0), f = tap(p, size, 1, 0);
    vec3 g = tap(p, size, -1, 1), h = tap(p, size, 0, 1), i = tap(p, size, 1, 1);

    vec3 mn_cross = min(min(min(b, d), min(f, h)), e);
    vec3 mx_cross = max(max(max(b, d), max(f, h)), e);
    vec3 mn_box = min(mn_cross, min(min(a, c), min(g, i)));
    vec3 mx_box = max(mx_cross, max(max(a, c), max(g, i)));
    vec3 mn = 0.5 * (mn_cross + mn_box);
    vec3 mx = 0.5 * (mx_cross + mx_box);

    vec3 amp = sqrt(clamp(min(mn, 1.0 - mx) / max(mx, vec3(1e-8)), 0.0, 1.0));
    vec3 w = amp * u_peak;
    vec3 s = (b + d) + (f + h);
    frag = vec4((e + w * s) / (1.0 + 4.0 * w), centre.a);
}
