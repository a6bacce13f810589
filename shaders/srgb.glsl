// srgb.glsl - the sRGB transfer functions of gpu_deconv/core/colour.py, term for term in float32.
//
//   decode:  |v| <= 0.04045   -> |v| / 12.92          else ((|v| + 0.055) / 1.055) ^ 2.4
//   encode:  |v| <= 0.0031308 -> |v| * 12.92          else 1.055 * |v| ^ (1 / 2.4) - 0.055
//
// both extended to negative values by odd symmetry (copysign), so filter overshoot below zero survives
// a round trip instead of being clipped before quantisation. 0.41666666 is float32(1 / 2.4), the
// constant NumPy uses (a GLSL 1.0 / 2.4 might be folded with a different rounding). mix() with a bvec
// selects without arithmetic, so the unused branch (pow of a small number) cannot leak into the result.

float srgb_to_linear(float v) {
    float a = abs(v);
    float lin = a <= 0.04045 ? a / 12.92 : pow((a + 0.055) / 1.055, 2.4);
    return v < 0.0 ? -lin : lin;
}

vec3 srgb_to_linear(vec3 v) {
    vec3 a = abs(v);
    vec3 lin = mix(pow((a + 0.055) / 1.055, vec3(2.4)), a / 12.92, lessThanEqual(a, vec3(0.04045)));
    return mix(lin, -lin, lessThan(v, vec3(0.0)));
}

float linear_to_srgb(float v) {
    float a = abs(v);
    float enc = a <= 0.0031308 ? a * 12.92 : 1.055 * pow(a, 0.41666666) - 0.055;
    return v < 0.0 ? -enc : enc;
}

vec3 linear_to_srgb(vec3 v) {
    vec3 a = abs(v);
    vec3 enc = mix(1.055 * pow(a, vec3(0.41666666)) - 0.055, a * 12.92, lessThanEqual(a, vec3(0.0031308)));
    return mix(enc, -enc, lessThan(v, vec3(0.0)));
}
