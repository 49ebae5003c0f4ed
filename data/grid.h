// Labelled image grids for looking at samples: rows of samples, columns such as "low-res | SR3 | truth",
// with captions drawn in a small built-in 5x7 bitmap font.
//
// Layout (all in pixels, s = text scale, p = padding, cell = the largest image height/width in the grid):
//   width  = p + [row-title width + p] + sum over columns of (column width + p)
//   height = p + [7 s + p if there are column titles] + rows * (cell height + p)
// where a column is as wide as the larger of the cell width and its title (6 s per character, minus the
// last character's 1-column gap). Smaller images are upsized by nearest neighbour to the cell size and
// centred in their column. The grid is RGB; grey images are replicated.
#pragma once

#include <string>
#include <vector>

#include "data/image.h"

namespace iris::data {

// The 5x7 font: digits, letters (lower case drawn as upper case), space and - _ | . , : ; / \ ( ) [ ] # + = %
// ? ! < > ' " * ^ ~. Any other character is drawn as a hollow box.
bool font_has_glyph(char ch);
int text_width(const std::string& text, int scale);  // 6 * scale per character minus the trailing gap
// Draws `text` with its top-left corner at (x, y), clipped to the image; `rgb` is used for 3-channel images,
// rgb[0] for grey ones.
void draw_text(Image& img, int x, int y, const std::string& text, int scale, const uint8_t rgb[3]);

struct GridOptions {
  int padding = 4;
  int text_scale = 0;  // 0: 1 for cells narrower than 64 pixels, else 2
  uint8_t background[3] = {255, 255, 255};
  uint8_t text_color[3] = {0, 0, 0};
};

// rows[r][c] is the image in row r, column c; every row must have the same number of columns (that of
// column_titles when it is not empty). row_titles, when given, has one entry per row.
Image make_grid(const std::vector<std::vector<Image>>& rows, const std::vector<std::string>& column_titles,
                const std::vector<std::string>& row_titles = {}, const GridOptions& options = {});
// make_grid written as a PNG file.
void write_grid(const std::string& path, const std::vector<std::vector<Image>>& rows,
                const std::vector<std::string>& column_titles,
                const std::vector<std::string>& row_titles = {}, const GridOptions& options = {});

}  // namespace iris::data
