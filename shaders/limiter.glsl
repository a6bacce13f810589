// limiter.glsl - the halo limiter (gpu_deconv/core/adaptive.py, limit_overshoot), for any last pass.
//
// With lo, hi the min and max of the input over the pixel and its 4 neighbours (mirror rule) and
// m = margin * (hi - lo): an output above hi becomes hi + o m / (m + o) (o = out - hi), one below lo
// becomes lo - u m / (m + u) (u = lo - out), anything in [lo, hi] is kept - slope 1 at the range's
// edge, never more than m outside it; margin 0 is a hard clamp. Needs common.glsl (COL, CSW, FETCH,
// mirror_index). Used by adaptive_apply.frag; mixture_v.frag can use it the same way (see the module).

void cross_range(sampler2D s, vec2 inv, ivec2 p, ivec2 region, COL centre, out COL lo, out COL hi) {
    COL n0 = CSW(FETCH(s, ivec2(p.x, mirror_index(p.y - 1, region.y)), inv));
    COL n1 = CSW(FETCH(s, ivec2(mirror_index(p.x - 1, region.x), p.y), inv));
    COL n2 = CSW(FETCH(s, ivec2(mirror_index(p.x + 1, region.x), p.y), inv));
    COL n3 = CSW(FETCH(s, ivec2(p.x, mirror_index(p.y + 1, region.y)), inv));
    lo = min(min(min(centre, n0), min(n1, n2)), n3);
    hi = max(max(max(centre, n0), max(n1, n2)), n3);
}

COL limit_overshoot(COL o, COL lo, COL hi, float margin) {
    COL m = margin * (hi - lo);
    COL over = max(o - hi, COL(0.0));
    COL under = max(lo - o, COL(0.0));
    COL up = hi + over * m / (m + over);
    COL dn = lo - under * m / (m + under);
#if COLOUR == 1
    return over > 0.0 ? up : (under > 0.0 ? dn : o);
#else
    return mix(mix(o, dn, greaterThan(under, COL(0.0))), up, greaterThan(over, COL(0.0)));
#endif
}
