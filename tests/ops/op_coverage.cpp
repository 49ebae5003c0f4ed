#include "tests/ops/op_coverage.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace iris::optable {

namespace {

// The text with comments and preprocessor lines blanked (string and character literals kept).
std::string strip_comments(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  bool line_start = true;
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '/' && i + 1 < s.size() && s[i + 1] == '/') {
      while (i < s.size() && s[i] != '\n') ++i;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      const size_t end = s.find("*/", i + 2);
      i = end == std::string::npos ? s.size() : end + 2;
      out += ' ';
    } else if (c == '#' && line_start) {
      while (i < s.size() && s[i] != '\n') i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
    } else if (c == '"' || c == '\'') {
      const size_t start = i++;
      while (i < s.size() && s[i] != c) i += s[i] == '\\' ? 2 : 1;
      ++i;
      out.append(s, start, std::min(i, s.size()) - start);
      line_start = false;
    } else {
      out += c;
      if (c == '\n')
        line_start = true;
      else if (!std::isspace(static_cast<unsigned char>(c)))
        line_start = false;
      ++i;
    }
  }
  return out;
}

std::string collapse_spaces(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool is_ident(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// Splits at commas outside <>, (), {}, [].
std::vector<std::string> split_top(const std::string& s) {
  std::vector<std::string> parts;
  int depth = 0;
  std::string cur;
  for (char c : s) {
    if (c == '<' || c == '(' || c == '{' || c == '[') ++depth;
    if (c == '>' || c == ')' || c == '}' || c == ']') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!collapse_spaces(cur).empty() || !parts.empty()) parts.push_back(cur);
  return parts;
}

// "const std::array<int64_t, 2> stride = {1, 1}" -> "array<int64_t,2>".
std::string param_type(std::string p) {
  int depth = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '<' || c == '(' || c == '{' || c == '[') ++depth;
    if (c == '>' || c == ')' || c == '}' || c == ']') --depth;
    if (c == '=' && depth == 0) {
      p.resize(i);
      break;
    }
  }
  p = collapse_spaces(p);
  // Drop the parameter's name: a trailing identifier preceded by a type (an identifier, '>', '&' or '*').
  size_t e = p.size();
  size_t b = e;
  while (b > 0 && is_ident(p[b - 1])) --b;
  if (b < e && b > 0) {
    size_t k = b;
    while (k > 0 && p[k - 1] == ' ') --k;
    if (k > 0 && (is_ident(p[k - 1]) || p[k - 1] == '>' || p[k - 1] == '&' || p[k - 1] == '*')) p.resize(b);
  }
  // Remove `const` words, then '&', spaces and "std::".
  std::string out;
  std::istringstream words(p);
  std::string w, joined;
  while (words >> w)
    if (w != "const") joined += w + " ";
  for (size_t i = 0; i < joined.size(); ++i) {
    if (joined.compare(i, 5, "std::") == 0) {
      i += 4;
      continue;
    }
    if (joined[i] == '&' || joined[i] == ' ') continue;
    out += joined[i];
  }
  return out;
}

// Parses `stmt` (one statement at namespace iris scope, comments removed) as a function declaration.
bool parse_decl(const std::string& stmt_in, OpDecl& d) {
  std::string s = collapse_spaces(stmt_in);
  // Leading template heads, attributes and specifiers.
  for (bool again = true; again;) {
    again = false;
    if (s.rfind("template", 0) == 0) {
      const size_t lt = s.find('<');
      if (lt == std::string::npos) return false;
      int depth = 0;
      size_t k = lt;
      for (; k < s.size(); ++k) {
        if (s[k] == '<') ++depth;
        if (s[k] == '>' && --depth == 0) break;
      }
      if (k >= s.size()) return false;
      s = collapse_spaces(s.substr(k + 1));
      again = true;
    }
    if (s.rfind("[[", 0) == 0) {
      const size_t e = s.find("]]");
      if (e == std::string::npos) return false;
      s = collapse_spaces(s.substr(e + 2));
      again = true;
    }
    for (const char* spec : {"inline ", "static ", "constexpr ", "extern "}) {
      if (s.rfind(spec, 0) == 0) {
        s = s.substr(std::string(spec).size());
        again = true;
      }
    }
  }
  size_t pos = 0;
  if (s.rfind("Tensor ", 0) == 0) {
    pos = 7;
  } else if (s.rfind("std::vector<Tensor> ", 0) == 0) {
    pos = 20;
  } else {
    return false;
  }
  size_t e = pos;
  while (e < s.size() && is_ident(s[e])) ++e;
  if (e == pos || std::isdigit(static_cast<unsigned char>(s[pos]))) return false;
  d.name = s.substr(pos, e - pos);
  size_t open = e;
  while (open < s.size() && s[open] == ' ') ++open;
  if (open >= s.size() || s[open] != '(') return false;
  // The matching ')'.
  int depth = 0;
  size_t close = std::string::npos;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '(') ++depth;
    if (s[i] == ')' && --depth == 0) {
      close = i;
      break;
    }
  }
  if (close == std::string::npos) return false;
  d.params.clear();
  for (const std::string& p : split_top(s.substr(open + 1, close - open - 1))) {
    const std::string t = param_type(p);
    if (t != "void") d.params.push_back(t);
  }
  return true;
}

}  // namespace

std::vector<OpDecl> parse_op_header(const std::string& text, const std::string& file) {
  const std::string s = strip_comments(text);
  std::vector<OpDecl> decls;
  std::vector<std::string> scopes;  // "ns:<name>" for namespaces, "{" for anything else
  size_t stmt_start = 0;
  int paren = 0;
  auto at_iris_scope = [&] { return scopes.size() == 1 && scopes[0] == "ns:iris"; };
  auto consider = [&](size_t end) {
    if (!at_iris_scope()) return;
    OpDecl d;
    if (parse_decl(s.substr(stmt_start, end - stmt_start), d)) {
      d.file = file;
      decls.push_back(d);
    }
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '"' || c == '\'') {  // skip literals
      for (++i; i < s.size() && s[i] != c; ++i)
        if (s[i] == '\\') ++i;
      continue;
    }
    if (c == '(') ++paren;
    if (c == ')') --paren;
    if (paren > 0) continue;  // braces of default arguments ({1, 1}) are not scopes
    if (c == ';') {
      consider(i);
      stmt_start = i + 1;
    } else if (c == '{') {
      consider(i);  // an inline definition
      const std::string head = collapse_spaces(s.substr(stmt_start, i - stmt_start));
      // `namespace a::b {` is one scope "ns:a::b" (closed by one '}'); anonymous namespaces are "ns:".
      if (head.rfind("namespace", 0) == 0 && (head.size() == 9 || !is_ident(head[9])))
        scopes.push_back("ns:" + collapse_spaces(head.substr(9)));
      else
        scopes.push_back("{");
      stmt_start = i + 1;
    } else if (c == '}') {
      if (!scopes.empty()) scopes.pop_back();
      stmt_start = i + 1;
    }
  }
  return decls;
}

std::vector<OpDecl> public_ops(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<OpDecl> all;
  for (const auto& [file, text] : headers)
    for (OpDecl& d : parse_op_header(text, file)) all.push_back(std::move(d));
  std::map<std::string, int> count;
  for (const OpDecl& d : all) ++count[d.name];
  for (OpDecl& d : all) {
    d.key = d.name;
    if (count[d.name] > 1) {
      d.key += "(";
      for (size_t i = 0; i < d.params.size(); ++i) d.key += (i ? "," : "") + d.params[i];
      d.key += ")";
    }
  }
  return all;
}

std::vector<std::pair<std::string, std::string>> read_headers(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().extension() != ".h") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    out.emplace_back(e.path().filename().string(), ss.str());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> coverage_problems(const std::vector<OpDecl>& decls, const std::vector<OpCase>& rows,
                                           const std::vector<Exclusion>& not_ops,
                                           const std::vector<Exclusion>& no_cuda) {
  std::vector<std::string> problems;
  std::map<std::string, const OpDecl*> declared;
  for (const OpDecl& d : decls) declared[d.key] = &d;
  std::map<std::string, int> rows_of, cuda_rows_of;
  for (const OpCase& r : rows) {
    ++rows_of[r.op];
    if (r.runs_on(cuda_f32) || r.runs_on(cuda_bf16) || r.runs_on(cuda_autocast)) ++cuda_rows_of[r.op];
    if (r.op.rfind("Tensor::", 0) != 0 && !declared.count(r.op) && rows_of[r.op] == 1)
      problems.push_back("row '" + r.name + "' is keyed '" + r.op +
                         "', which no framework/ops header declares (keys: the op's name, or name(types) for "
                         "an overloaded name)");
  }
  std::set<std::string> excluded, no_cuda_keys;
  for (const Exclusion& e : not_ops) {
    excluded.insert(e.key);
    if (!declared.count(e.key))
      problems.push_back("not_ops() lists '" + e.key + "', which no header declares");
    if (e.reason.empty()) problems.push_back("not_ops() lists '" + e.key + "' without a reason");
    if (rows_of.count(e.key)) problems.push_back("not_ops() lists '" + e.key + "', which has rows");
  }
  for (const Exclusion& e : no_cuda) {
    no_cuda_keys.insert(e.key);
    if (!declared.count(e.key))
      problems.push_back("no_cuda_case() lists '" + e.key + "', which no header declares");
    if (e.reason.empty()) problems.push_back("no_cuda_case() lists '" + e.key + "' without a reason");
    if (cuda_rows_of.count(e.key))
      problems.push_back("no_cuda_case() lists '" + e.key + "', which has a row that runs on CUDA");
  }
  for (const OpDecl& d : decls) {
    if (excluded.count(d.key)) continue;
    if (!rows_of.count(d.key)) {
      problems.push_back(d.key + " (framework/ops/" + d.file +
                         ") has no row in tests/ops/op_cases.cpp (if it used to be a tensor method, its rows are "
                         "keyed 'Tensor::" + d.name + "')");
    } else if (!cuda_rows_of.count(d.key) && !no_cuda_keys.count(d.key)) {
      problems.push_back(
          d.key + " (framework/ops/" + d.file +
          ") has no row that runs on CUDA: add one, or list it in no_cuda_case() with the reason");
    }
  }
  return problems;
}

}  // namespace iris::optable
