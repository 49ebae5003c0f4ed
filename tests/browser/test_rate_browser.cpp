// `iris rate serve` driven through its real page in headless Chromium (label browser): two raters answer
// by arrow keys, the server is killed mid-study and restarted and the page continues where the rater was,
// bad requests are refused without touching the record, and `iris rate report` counts what was pressed.
//
// Skipped (ctest: "skipped: no chromium ...") only when chromium or chromedriver is not installed; when they
// are, any failure to start or drive them fails the test. IRIS_RATE_SCREENSHOT=FILE saves a screenshot of a
// trial on screen.
#include <doctest/doctest.h>
#include <httplib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "data/image.h"
#include "tests/browser/browser_util.h"
#include "tests/rate/rate_test_util.h"
#include "tools/rate/answers.h"
#include "tools/rate/study.h"

using namespace iris;
using namespace iris::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kToken = "browser-test-token-42";

// `iris rate serve` as a child process; its base URL read from what it prints.
struct Server {
  std::unique_ptr<Child> child;
  std::string base;  // http://127.0.0.1:PORT
  int port = 0;

  Server(const std::string& dir, const std::string& log, const std::vector<std::string>& extra) {
    const size_t offset = file_text(log).size();  // a restarted server appends to the same log
    std::vector<std::string> argv = {IRIS_BINARY, "rate", "serve",        "--study",     dir,
                                     "--port",    "0",    "--token-file", dir + ".token"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    child = std::make_unique<Child>(argv, log);
    const std::string marker = "serving at http://127.0.0.1:";
    const std::string line = wait_for(
        [&]() -> std::optional<std::string> {
          const std::string text = file_text(log).substr(offset);
          const auto at = text.find(marker);
          if (at != std::string::npos && text.find('\n', at) != std::string::npos)
            return text.substr(at + marker.size());
          if (!child->running()) throw std::runtime_error("iris rate serve exited:\n" + text);
          return std::nullopt;
        },
        std::chrono::seconds(60), "iris rate serve to listen");
    port = std::stoi(line);
    base = "http://127.0.0.1:" + std::to_string(port);
  }
};

// The method a rater's trial shows and where its output is, from the study's plan.
struct Shown {
  std::string method;
  int64_t image = 0;
  bool output_left = false;
};

Shown shown(const std::string& dir, const std::string& rater, int64_t trial) {
  const rate::StudyConfig s = rate::load_study(dir);
  const rate::Trial t = rate::plan_trials(s, rater)[static_cast<size_t>(trial)];
  return {s.methods[static_cast<size_t>(t.method)].name, t.image, t.output_left};
}

// Who is fooled by what, by design: ann by every sr3 output, bob by sr3 on even images and by regression on
// image 1. The page is answered so: the output's side when fooled, else the truth's.
bool fooled_by_design(const std::string& rater, const Shown& s) {
  if (rater == "ann") return s.method == "sr3";
  return s.method == "sr3" ? s.image % 2 == 0 : s.image == 1;
}

std::string state_is(const std::string& state, int64_t trial) {
  return "return document.body.dataset.state === '" + state + "' && document.body.dataset.trial === '" +
         std::to_string(trial) + "'";
}

// Waits for `trial` on screen, answers it by key after `delay` (or, with `after_view`, once the viewing time
// is over and the pair hidden), and waits for the page to take the next one.
void answer_trial(WebDriver& wd, const std::string& dir, const std::string& rater, int64_t trial,
                  std::chrono::milliseconds delay, bool after_view = false) {
  // The state and the images shown, read together (a slow poll may find the viewing time already over).
  const std::string shown_now =
      wd.wait_until("const b = document.body.dataset; return b.trial === '" + std::to_string(trial) +
                        "' && (b.state === 'viewing' || b.state === 'question') ? b.state + ':' + "
                        "document.querySelectorAll('.slot img').length : ''",
                    std::chrono::seconds(30), rater + "'s trial " + std::to_string(trial));
  CHECK((shown_now == "viewing:2" || shown_now == "question:0"));  // the pair while viewing, nothing after
  if (after_view) {
    wd.wait_until(state_is("question", trial), std::chrono::seconds(10), "the viewing time to end");
    CHECK(wd.run("return document.querySelectorAll('.slot img').length").get<int>() == 0);  // pair hidden
  } else {
    std::this_thread::sleep_for(delay);
  }
  const Shown s = shown(dir, rater, trial);
  const bool choose_left = fooled_by_design(rater, s) == s.output_left;
  wd.press(choose_left ? kArrowLeft : kArrowRight);
  wd.wait_until("return document.body.dataset.answered === '" + std::to_string(trial + 1) + "'",
                std::chrono::seconds(30), "answer " + std::to_string(trial) + " to be taken");
}

std::vector<rate::Answer> answers_of(const std::string& dir) {
  return rate::read_answers(rate::answers_file(dir), [](const std::string& w) { FAIL(w); });
}

struct Run {
  int code = -1;
  std::string out;
};
Run run_iris(const std::string& args) {
  Run r;
  FILE* p = popen((std::string("'") + IRIS_BINARY + "' " + args + " 2>&1").c_str(), "r");
  REQUIRE(p);
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

int status_of(const httplib::Result& r) {
  return r ? r->status : -1;
}

}  // namespace

TEST_CASE("iris rate serve in headless Chromium: key presses, a killed server, bad requests, the report") {
  const std::string chromium =
      find_program("IRIS_CHROMIUM", {"chromium", "chromium-browser", "google-chrome"});
  const std::string chromedriver = find_program("IRIS_CHROMEDRIVER", {"chromedriver"});
  if (chromium.empty() || chromedriver.empty()) {
    std::printf("skipped: no %s (install chromium and chromium-driver: tools/setup.sh)\n",
                chromium.empty() ? "chromium" : "chromedriver");
    return;
  }
  TempDir root("rate-browser");
  const std::string dir = root.file("study"), log = root.file("server.log");
  std::ofstream(dir + ".token") << kToken << "\n";
  const auto methods = write_two_methods(root.path(), 3);
  // The default viewing time, 3 s as in SR3.
  const std::vector<std::string> create = {"--seed", "5", "--method", methods[0], "--method", methods[1]};

  auto server = std::make_unique<Server>(dir, log, create);
  WebDriver wd(chromedriver, chromium, root.path().string());

  // ann: the link carries her name; 3 of her 6 trials, the first answered at once (too fast to count), the
  // third only after the pair was hidden.
  wd.go(server->base + "/?token=" + kToken + "&rater=ann");
  answer_trial(wd, dir, "ann", 0, std::chrono::milliseconds(0));
  answer_trial(wd, dir, "ann", 1, std::chrono::milliseconds(400));
  CHECK(wd.run("return document.getElementById('progress').textContent").get<std::string>() ==
        "Trial 3 of 6");
  answer_trial(wd, dir, "ann", 2, std::chrono::milliseconds(0), true);
  CHECK(answers_of(dir).size() == 3);

  // A second server on the same study is refused while the first runs.
  const Run second = run_iris("rate serve --study '" + dir + "' --port 0 --token-file '" + dir + ".token'");
  CHECK(second.code == 1);
  CHECK(second.out.find("being served by another process") != std::string::npos);

  // Killed mid-study (no chance to flush anything): every acknowledged answer is on disk, and a restarted
  // server (another port) continues ann at trial 3.
  CHECK(server->child->stop(SIGKILL) == 128 + SIGKILL);
  CHECK(answers_of(dir).size() == 3);
  server = std::make_unique<Server>(dir, log, std::vector<std::string>{});
  CHECK(file_text(log).find("3 answers so far") != std::string::npos);
  wd.go(server->base + "/?token=" + kToken + "&rater=ann");
  for (int64_t t = 3; t < 6; ++t) answer_trial(wd, dir, "ann", t, std::chrono::milliseconds(400));
  wd.wait_until("return document.body.dataset.state === 'done'", std::chrono::seconds(20), "ann's last page");
  CHECK(wd.run("return document.getElementById('progress').textContent").get<std::string>() ==
        "6 of 6 answered");

  // bob types his name on the start page and presses Enter.
  wd.go(server->base + "/?token=" + kToken);
  wd.wait_until("return document.body.dataset.state === 'start'", std::chrono::seconds(20), "the start page");
  wd.type_into("#rater", "bob");
  wd.press(kEnter);
  for (int64_t t = 0; t < 6; ++t) {
    if (t == 0 && std::getenv("IRIS_RATE_SCREENSHOT")) {
      wd.wait_until(state_is("viewing", 0), std::chrono::seconds(30),
                    "bob's first trial");  // the pair on screen
      std::ofstream(std::getenv("IRIS_RATE_SCREENSHOT"), std::ios::binary) << wd.screenshot_png();
    }
    answer_trial(wd, dir, "bob", t, std::chrono::milliseconds(400));
  }
  wd.wait_until("return document.body.dataset.state === 'done'", std::chrono::seconds(20), "bob's last page");

  // The record: one line per key press, each what the plan showed and what was pressed.
  const auto answers = answers_of(dir);
  REQUIRE(answers.size() == 12);
  std::map<std::string, std::pair<int, int>> expected;  // method -> (fooled, counted) at --min-ms 300
  for (const rate::Answer& a : answers) {
    INFO(a.rater, " trial ", a.trial);
    const Shown s = shown(dir, a.rater, a.trial);
    CHECK(a.method == s.method);
    CHECK(a.image == s.image);
    CHECK(a.output_left == s.output_left);
    CHECK(a.fooled() == fooled_by_design(a.rater, s));
    if (!(a.rater == "ann" && (a.trial == 0 || a.trial == 2))) CHECK(a.response_ms >= 400);
    if (a.rater == "ann" && a.trial == 2) CHECK(a.response_ms >= 3000);  // answered after the viewing time
    if (a.response_ms >= 300) {
      expected[a.method].first += a.fooled() ? 1 : 0;
      expected[a.method].second += 1;
    }
  }

  // Bad requests to the restarted server: each refused, the record untouched.
  const std::string before = file_text(rate::answers_file(dir));
  httplib::Client c("127.0.0.1", server->port);
  const httplib::Headers tok = {{"X-Iris-Token", kToken}};
  const auto post = [&](const json& body, const httplib::Headers& h) {
    return c.Post("/api/answer", h, body.dump(), "application/json");
  };
  const json good = {{"rater", "ann"}, {"trial", 0}, {"choice", "left"}, {"response_ms", 900}};
  const auto with = [&](const json& changes) {
    json j = good;
    j.update(changes);
    return j;
  };
  CHECK(status_of(post(good, tok)) == 409);                                     // a repeated answer
  CHECK(status_of(post(with({{"trial", 99}}), tok)) == 404);                    // an unknown trial
  CHECK(status_of(post(with({{"rater", "cy"}}), {})) == 401);                   // no token
  CHECK(status_of(post(with({{"pad", std::string(8000, 'x')}}), tok)) == 413);  // oversized
  CHECK(status_of(c.Get("/study.json", tok)) == 404);                           // a path in a request
  CHECK(status_of(c.Get("/images/truth/000000.png", tok)) == 404);
  CHECK(status_of(c.Get("/api/image?rater=cy&trial=0&side=..%2F..%2Fstudy.json", tok)) == 400);
  CHECK(status_of(c.Post("/api/answer", tok, "{\"rater\": \"cy\", \"trial\": 0,", "application/json")) ==
        400);
  CHECK(file_text(rate::answers_file(dir)) == before);
  const std::string refused = file_text(log);
  CHECK(refused.find("refused 409 POST /api/answer: trial 0 was already answered") != std::string::npos);

  CHECK(server->child->stop(SIGTERM) == 0);
  CHECK(file_text(log).find("stopped with 12 answers") != std::string::npos);

  // The report counts what was pressed.
  const Run report = run_iris("rate report --study '" + dir + "' --bootstrap 500");
  MESSAGE("iris rate report:\n", report.out);
  REQUIRE(report.code == 0);
  CHECK(report.out.find("12 answers from 2 raters") != std::string::npos);
  const json j = json::parse(file_text(dir + "/report.json"));
  REQUIRE(j["methods"].size() == 2);
  for (const auto& m : j["methods"]) {
    const auto e = expected[m["name"].get<std::string>()];
    INFO(m.dump());
    CHECK(m["fooled"] == e.first);
    CHECK(m["counted"] == e.second);
    CHECK(m["answered"] == 6);
    CHECK(m["fool_rate"].get<double>() == doctest::Approx(static_cast<double>(e.first) / e.second));
    CHECK(m["ci95"][0].get<double>() <= m["fool_rate"].get<double>());
    CHECK(m["ci95"][1].get<double>() >= m["fool_rate"].get<double>());
  }
  CHECK(j["raters"].size() == 2);
  CHECK(j["raters"][0]["finished"] == true);
  const data::Image chart = data::read_png(dir + "/fool_rate.png");
  CHECK(chart.width >= 560);
}
