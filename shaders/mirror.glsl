// mirror.glsl - the boundary rule of every gpu_deconv pass, written once (included by common.glsl, the viewer's
// passes and pasted into exported shaders by gpu_deconv/apps/export.py).
//
// Boundary rule (the one gpu_deconv/core/plan.py documents): mirror with the edge pixel repeated, period 2n,
//
//     ... 1 0 | 0 1 2 ... n-1 | n-1 n-2 ...        (numpy 'symmetric', scipy.ndimage 'reflect')
//
// mirror_index() implements it on integers, so it is exact on every GPU (GL has no portable
// MIRRORED_REPEAT + texelFetch combination, and texelFetch outside the texture returns 0).
// Two variants, chosen when the program is built:
//   * default: one reflection, exact while the offset is <= n (every pass on images larger than the
//     kernel radius) - two compares and two selects;
//   * MIRROR_PERIODIC: fold into [0, 2n) first, exact for any offset >= -16n (tiny images, e.g. 1xN
//     rows with a 31-tap kernel). GLSL leaves % with a negative operand undefined, hence the bias.
// mirror_index_periodic() is always the periodic fold; mirror_index() is the variant the build chose.

int mirror_index_periodic(int p, int n) {
    int period = 2 * n;
    int m = (p + 16 * period) % period;
    return m >= n ? period - 1 - m : m;
}

int mirror_index(int p, int n) {
#ifdef MIRROR_PERIODIC
    return mirror_index_periodic(p, n);
#else
    p = p < 0 ? -1 - p : p;
    return p >= n ? 2 * n - 1 - p : p;
#endif
}
