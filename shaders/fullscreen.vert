// fullscreen.vert - one triangle that covers the viewport, generated from gl_VertexID.
//
// Draw with glDrawArrays(GL_TRIANGLES, 0, 3) and no vertex attributes (an empty VAO):
//
//     id 0 -> (-1, -1)    id 1 -> (3, -1)    id 2 -> (-1, 3)
//
// A single oversized triangle instead of a two-triangle quad because the quad's shared diagonal makes
// the rasteriser shade the 2x2 quads along it twice; the clipper trims the triangle to the viewport, so
// every pixel of the viewport runs the fragment shader exactly once. The fragment shaders address
// texels with gl_FragCoord (pixel centres at +0.5), so no varyings are needed either.
#version 330 core

void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
