#version 330 core
// rcas.frag - RCAS-style robust contrast-adaptive sharpener, one pass (written for gpu_deconv's benchmarks;
// a peer, not part of the engine). NumPy mirror: benchmarks/peers/sharpeners.py::rcas_reference.
//
// Taps: the centre e and its 4 neighbours (a cross), mirror boundary (integer mirror_index + texelFetch,
// like the engine's passes):
//
//       b
//     d e f          S = b + d + f + h
//       h
//
// Output: o = (e + L * S) / (1 + 4 L) with one negative lobe L for all colour channels (a normalised
// 5-tap filter: weights sum to 1, so flat areas are unchanged).
//
// Lobe limit ("robust"): per channel let mn = min(e, b, d, f, h), mx = max(e, b, d, f, h). For L in
// (-1/4, 0] o(L) is monotone in L and o(0) = e, so o stays inside [mn, mx] exactly when
//     o >= mn  <=>  L >= -(e - mn) / (S - 4 mn)      (S >= 4 mn)
//     o <= mx  <=>  L >= -(mx - e) / (4 mx - S)      (4 mx >= S)
// (a zero denominator means that side sets no limit: the division is guarded by 1e-8 and the cap below
// takes over). The lobe is the most negative value every channel allows, L_lim = max over channels of
// max(both limits) - so no channel over- or undershoots its local range and hues do not shift - capped
// at -LOBE_CAP (keeps 1 + 4 L >= 1/4), then scaled by the sharpness in [0, 1]:
//     L = sharpness * max(L_lim, -LOBE_CAP)
// Scaling towards 0 keeps the guarantee (the allowed set of L is an interval containing 0), so the output
// never leaves the local cross min / max: no halos, no ringing, for any sharpness in [0, 1]. A pixel that
// is itself the local minimum or maximum gets L = 0 (is left alone). Alpha is copied from the centre.

#define LOBE_CAP 0.1875

uniform sampler2D u_src;
uniform float u_sharpness;
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
    vec3 b = tap(p, size, 0, -1), d = tap(p, size, -1, 0), f = tap(p, size, 1, 0), h = tap(p, size, 0, 1);

    vec3 mn = min(min(min(b, d), min(f, h)), e);
    vec3 mx = max(max(max(b, d), max(f, h)), e);
    vec3 s = (b + d) + (f + h);
    vec3 lo = -(e - mn) / max(s - 4.0 * mn, vec3(1e-8));
    vec3 hi = -(mx - e) / max(4.0 * mx - s, vec3(1e-8));
    vec3 lim = max(lo, hi);
    float lobe = u_sharpness * max(max(max(lim.r, lim.g), lim.b), -LOBE_CAP);
    frag = vec4((e + lobe * s) / (1.0 + 4.0 * lobe), centre.a);
}
