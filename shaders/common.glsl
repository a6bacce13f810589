// common.glsl - shared helpers for every gpu_deconv fragment pass (pasted in by gpu_deconv/gl/shaders.py).
//
// Boundary rule: see mirror.glsl (mirror with the edge pixel repeated, exact on integers).
//
// FETCH(s, p, inv) reads texel p with textureLod() at the texel centre instead of texelFetch(): with a
// NEAREST sampler (the executor binds its own sampler object to every unit it uses) the centre
// (p + 0.5) * inv maps back to floor(u * size) = p exactly (the rounding error of inv is below
// 2^-22 * size << 0.5 texel, and hardware fixed-point samplers keep >= 8 sub-texel bits), so the result
// is the same texel. On Mesa llvmpipe textureLod() is ~25% cheaper than texelFetch(), which pays for
// robust out-of-range handling we never need.
//
// STORE(x): what an intermediate of precision 16 stores. Natively (default) the RGBA16F render target
// does the float32 -> float16 conversion. With EMULATE_FP16 the target is RGBA32F and half_tz() rounds
// in the shader instead - toward zero, clamped to +-65504, subnormals on the 2^-24 grid: exactly what
// Mesa llvmpipe's RGBA16F store does (so results are bit-identical to the native path there), but
// several times cheaper on CPU rasterisers, which convert to and from half precision in software.
//
// PRECISE: when GL_ARB_gpu_shader5 is present the accumulators are declared `precise`, which forbids
// fusing a*b+c into an FMA; the sums then round exactly like the NumPy reference (gpu_deconv/core/reference.py).

#ifdef GL_ARB_gpu_shader5
#define PRECISE precise
#else
#define PRECISE
#endif

//@include mirror.glsl

#define FETCH(s, p, inv) textureLod((s), (vec2(p) + 0.5) * (inv), 0.0)

#ifdef EMULATE_FP16
vec4 half_tz(vec4 x) {
    vec4 a = abs(x);
    vec4 normal = uintBitsToFloat(floatBitsToUint(a) & 0xFFFFE000u);    // keep 10 mantissa bits
    vec4 sub = floor(a * 16777216.0) * 5.9604644775390625e-8;           // multiples of 2^-24
    vec4 r = min(mix(normal, sub, lessThan(a, vec4(6.103515625e-05))), vec4(65504.0));
    return mix(r, -r, lessThan(x, vec4(0.0)));
}
vec3 half_tz(vec3 x) { return half_tz(vec4(x, 0.0)).xyz; }
float half_tz(float x) { return half_tz(vec4(x)).x; }
#define STORE(x) half_tz(x)
#else
#define STORE(x) (x)
#endif

// Colour type: COLOUR == 1 works on .r only (gray, and the luma of LA images), COLOUR == 3 on .rgb
// (RGB padded to RGBA, RGBA). Alpha never goes through a filter: the final pass copies it from the
// chain input's centre texel, so it comes out bit-exact.
#if COLOUR == 1
#define COL float
#define CSW(v) ((v).r)
#define COL_TO_VEC4(c, a) vec4((c), 0.0, 0.0, (a))
#else
#define COL vec3
#define CSW(v) ((v).rgb)
#define COL_TO_VEC4(c, a) vec4((c), (a))
#endif
