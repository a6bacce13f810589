// adaptive_lookup.glsl - from the local energy to the adaptive filter's coefficient table position
// (gpu_deconv/core/adaptive.py: AdaptiveTable.level_ratio, pseudo_log2, AdaptiveTable.lookup), written once
// for the mpv and GLSL exports (gpu_deconv/apps/export.py pastes it, renamed gdc_*); the same arithmetic as
// adaptive_apply.frag, which can include it instead of its own copy.
//
//   r = max(E - noise_e, floor_frac * E) * inv                     (= A / sigma^2, E the smoothed energy)
//   v = plog2(r) = exponent + (mantissa - 1), from the float's bits (exact; log2 is not bit-portable)
//   t = clamp(v - start, 0, size - 1),  i = min(floor(t), size - 2),  f = t - i
//
// after which the caller interpolates the table rows: c = T[i] + f * (T[i + 1] - T[i]). No line here has
// a multiply feeding an add, so no `precise` is needed for the result to be the NumPy reference's.

float plog2(float r) {
    int bits = floatBitsToInt(r);
    float e = float(((bits >> 23) & 255) - 127);
    float m = intBitsToFloat((bits & 0x7FFFFF) | 0x3F800000);
    return e + (m - 1.0);
}

float level_ratio(float en, float noise_e, float floor_frac, float inv) {
    return max(en - noise_e, floor_frac * en) * inv;
}

void table_position(float ratio, float start, int size, out int i, out float f) {
    float t = clamp(plog2(ratio) - start, 0.0, float(size - 1));
    i = min(int(floor(t)), size - 2);
    f = t - float(i);
}
