// The op table's coverage check: the public ops declared in framework/ops/*.h, read from the headers
// themselves, against the rows of tests/ops/op_cases.cpp.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tests/ops/op_table.h"

namespace iris::optable {

// A function declared (or defined inline) at namespace iris scope of an op header, outside nested
// namespaces, classes and function bodies, returning Tensor or std::vector<Tensor>. Operators are not
// counted (they are spelled `operator+`, and forward to named ops).
struct OpDecl {
  std::string name;
  std::vector<std::string> params;  // parameter types without const, &, std::, names and defaults
  std::string file;
  std::string key;  // the coverage key: name, or name(params,...) when the name is overloaded
};

// The declarations in one header's text (keys not yet assigned).
std::vector<OpDecl> parse_op_header(const std::string& text, const std::string& file);

// The declarations of every (file name, text) pair, with keys assigned across all of them.
std::vector<OpDecl> public_ops(const std::vector<std::pair<std::string, std::string>>& headers);

// The headers (*.h) of a directory, sorted by name, as (file name, text).
std::vector<std::pair<std::string, std::string>> read_headers(const std::string& dir);

// Every way the table fails to cover the declared ops, one readable line each (empty: covered):
// an op without a row; an op with no row that runs on CUDA, unless `no_cuda` lists it; a row whose key no
// header declares ("Tensor::" keys excepted); an exclusion for a key no header declares, or without a
// reason; an op listed in `no_cuda` that does have a CUDA row.
std::vector<std::string> coverage_problems(const std::vector<OpDecl>& decls, const std::vector<OpCase>& rows,
                                           const std::vector<Exclusion>& not_ops,
                                           const std::vector<Exclusion>& no_cuda);

}  // namespace iris::optable
