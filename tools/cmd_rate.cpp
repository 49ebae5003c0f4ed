// `iris rate serve` and `iris rate report`: SR3's human 2AFC study ("Which image would you guess is from a
// camera?") run from a local web page against any sample sets Iris wrote, and its fool rates with their
// uncertainty. The study's logic lives in tools/rate/ (study folder layout: tools/rate/study.h).
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "data/image.h"
#include "framework/core/error.h"
#include "framework/io/hdf5.h"
#include "tools/commands.h"
#include "tools/rate/http_server.h"
#include "tools/rate/report.h"
#include "tools/rate/service.h"
#include "tools/rate/sources.h"
#include "tools/rate/study.h"
#include "tools/rate/token.h"

namespace iris::tools {

namespace fs = std::filesystem;

namespace {

struct ServeCli {
  std::string study, truth, host = "127.0.0.1", token, token_file;
  std::vector<std::string> methods;
  int64_t count = -1, images_per_method = -1;
  uint64_t seed = 0;
  double view_seconds = 3;
  int display = 0, port = 8080;
  bool show_input = false;
  CLI::App* cmd = nullptr;
  bool given(const char* option) const { return cmd->count(option) > 0; }
};

struct ReportCli {
  std::string study, json, plot;
  rate::ReportOptions options;
};

void say(const std::string& s) {
  std::printf("rate: %s\n", s.c_str());
  std::fflush(stdout);
}

void warn(const std::string& s) {
  std::fprintf(stderr, "rate: warning: %s\n", s.c_str());
}

std::string read_token(const ServeCli& o) {
  IRIS_CHECK(o.token.empty() || o.token_file.empty(),
             "rate serve: give the token with --token or --token-file, not both");
  if (o.token_file.empty()) return o.token;
  std::ifstream in(o.token_file);
  IRIS_CHECK(in, "rate serve: cannot read the token file '", o.token_file, "'");
  std::string t;
  std::getline(in, t);
  while (!t.empty() && (t.back() == '\r' || t.back() == ' ' || t.back() == '\t')) t.pop_back();
  IRIS_CHECK(!t.empty(), "rate serve: the token file '", o.token_file, "' is empty");
  return t;
}

// A study's design is fixed once it exists: options that would change it are refused, naming the option.
void check_same_design(const ServeCli& o, const rate::StudyConfig& s) {
  const auto refuse = [&](const std::string& option, const std::string& was, const std::string& now) {
    IRIS_THROW(
        "rate serve: the study '", o.study, "' was created with ", option, " ", was, ", not ", now,
        "; a study's design is fixed once it exists (start another --study folder, or leave the option out)");
  };
  if (o.given("--method")) {
    std::string was, now;
    for (const auto& m : s.methods) was += (was.empty() ? "" : ",") + m.name;
    for (const auto& arg : o.methods) now += (now.empty() ? "" : ",") + rate::parse_method_arg(arg).first;
    if (was != now) refuse("the methods", was, now);
  }
  if (o.given("--seed") && o.seed != s.seed) refuse("--seed", std::to_string(s.seed), std::to_string(o.seed));
  const int view_ms = static_cast<int>(std::lround(o.view_seconds * 1000));
  if (o.given("--view-seconds") && view_ms != s.view_ms)
    refuse("--view-seconds", std::to_string(s.view_ms / 1000.0), std::to_string(o.view_seconds));
  if (o.given("--count") && o.count != s.images)
    refuse("--count", std::to_string(s.images), std::to_string(o.count));
  if (o.given("--images-per-method") && o.images_per_method != s.images_per_method)
    refuse("--images-per-method", std::to_string(s.images_per_method), std::to_string(o.images_per_method));
  if (o.given("--display") && o.display != s.display_px)
    refuse("--display", std::to_string(s.display_px), std::to_string(o.display));
  if (o.given("--show-input") && o.show_input != s.show_input) refuse("--show-input", "off", "on");
  if (o.given("--truth"))
    say("note: --truth is only read when a study is created; the cached truth images are used");
}

// Blocks SIGINT and SIGTERM in every thread (the server's pool inherits the mask) and stops the server from a
// thread that waits for them: stopping is not something a signal handler may do.
class StopOnSignal {
 public:
  explicit StopOnSignal(rate::HttpServer& server) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([this, set, &server] {
      int sig = 0;
      sigwait(&set, &sig);
      if (done_) return;
      say(std::string("stopping (") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + "); every answer is on disk");
      // Until run() has returned: a signal that came before the server started listening must still stop it.
      while (!done_) {
        server.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  ~StopOnSignal() {
    done_ = true;
    // Wakes the waiter if no signal came; if it is already stopping the server, the signal stays pending
    // (blocked) and is never delivered.
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

std::string this_host() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "HOST";
  return buf;
}

void run_serve(const ServeCli& o) {
  IRIS_CHECK(o.view_seconds >= 0.1 && o.view_seconds <= 600, "rate serve: --view-seconds ", o.view_seconds,
             " is not in [0.1, 600]");
  IRIS_CHECK(o.display == 0 || (o.display >= 16 && o.display <= 4096), "rate serve: --display ", o.display,
             " is not in [16, 4096] (CSS pixels)");
  const std::string token = read_token(o);
  if (!token.empty()) rate::check_token(token);
  const bool loopback = rate::is_loopback_address(o.host);
  IRIS_CHECK(loopback || !token.empty(), "rate serve: --host ", o.host,
             " makes the study reachable from other machines; it then needs a study token: --token-file FILE "
             "(or --token TOKEN), e.g. ",
             rate::random_token(), " (raters open the link the server prints)");
  IRIS_CHECK(
      rate::study_exists(o.study) || !o.methods.empty(), "rate serve: '", o.study,
      "' holds no study yet: create one with --method NAME=FILE (one per method; samples.h5, cascade.h5, "
      "an HDF5 file with 'images' or a shard folder)");
  fs::create_directories(o.study);
  rate::StudyLock lock(o.study);
  rate::StudyConfig study;
  if (rate::study_exists(o.study)) {
    study = rate::load_study(o.study);
    check_same_design(o, study);
    if (!study.token_hash.empty()) {
      IRIS_CHECK(!token.empty(), "rate serve: the study '", o.study,
                 "' has a study token: give it with --token-file FILE (or --token)");
      IRIS_CHECK(rate::token_matches(token, study.token_hash),
                 "rate serve: the token given is not the study's token");
    } else if (!token.empty()) {
      study.token_hash = rate::hash_token(token);
      rate::save_study(o.study, study);
      say("the study now needs its token on every request");
    }
  } else {
    rate::CreateOptions c;
    c.methods = o.methods;
    c.truth = o.truth;
    c.count = o.count;
    c.images_per_method = o.images_per_method;
    c.seed = o.seed;
    c.view_ms = static_cast<int>(std::lround(o.view_seconds * 1000));
    c.display_px = o.display;
    c.show_input = o.show_input;
    c.token_hash = token.empty() ? "" : rate::hash_token(token);
    study = rate::create_study(o.study, c, say);
  }
  rate::RateService service(o.study, study, warn);
  rate::ServeOptions so;
  so.host = o.host;
  so.port = o.port;
  so.token_hash = study.token_hash;
  rate::HttpServer server(service, so, [](const std::string& line) { warn("refused " + line); });
  const int port = server.bind();
  const std::string shown_host = loopback ? (o.host == "::1" ? "[::1]" : o.host)
                                          : (o.host == "0.0.0.0" || o.host == "::" ? this_host() : o.host);
  const std::string url =
      "http://" + shown_host + ":" + std::to_string(port) + "/" + (token.empty() ? "" : "?token=" + token);
  say("study '" + o.study + "': " + std::to_string(study.methods.size()) + " methods, " +
      std::to_string(study.images) + " images, " + std::to_string(study.trials_per_rater()) +
      " trials per rater, " + std::to_string(study.view_ms) + " ms viewing; " +
      std::to_string(service.answers_recorded()) + " answers so far");
  say("serving at " + url);
  if (loopback)
    say("from another machine: ssh -N -L " + std::to_string(port) + ":" + shown_host + ":" +
        std::to_string(port) + " " + this_host() + ", then open http://localhost:" + std::to_string(port) +
        "/" + (token.empty() ? "" : "?token=" + token));
  say("Ctrl-C stops the server; every answer is already in " + rate::answers_file(o.study));
  {
    StopOnSignal stopper(server);
    server.run();
  }
  say("stopped with " + std::to_string(service.answers_recorded()) + " answers in " +
      rate::answers_file(o.study));
}

void run_report(const ReportCli& o) {
  const rate::StudyConfig study = rate::load_study(o.study);
  const std::string path = rate::answers_file(o.study);
  const auto answers = rate::read_answers(path, warn);
  IRIS_CHECK(!answers.empty(), "rate report: the study '", o.study, "' has no answers yet (", path, ")");
  const rate::Report r = rate::make_report(study, answers, o.options);
  std::fputs(rate::format_report(r).c_str(), stdout);
  const std::string json = o.json.empty() ? (fs::path(o.study) / "report.json").string() : o.json;
  const std::string plot = o.plot.empty() ? (fs::path(o.study) / "fool_rate.png").string() : o.plot;
  h5::write_file_atomic(json, rate::report_to_json(r).dump(2) + "\n");
  rate::write_png_atomic(plot, rate::report_chart(r));
  std::printf("\nwrote %s and %s\n", json.c_str(), plot.c_str());
}

}  // namespace

void register_rate(CLI::App& app) {
  auto* rate_cmd =
      app.add_subcommand("rate", "Human 2AFC study of sample sets (SR3's fool rate): serve, report");
  rate_cmd->require_subcommand(1);

  auto s = std::make_shared<ServeCli>();
  auto* serve = rate_cmd->add_subcommand(
      "serve",
      "Serve a 2AFC study page (creating the study on first use); answers go to STUDY/answers.jsonl");
  s->cmd = serve;
  serve->add_option("--study", s->study, "the study folder (created with the first --method list)")
      ->required();
  serve->add_option(
      "--method", s->methods,
      "NAME=FILE[:DATASET], one per method: samples.h5, cascade.h5 (last stage), an HDF5 file with "
      "'images', or a shard folder");
  serve->add_option(
      "--truth", s->truth,
      "the camera images, when the methods' files hold no 'truth': FILE[:DATASET] or a shard folder");
  serve->add_option("--count", s->count,
                    "use the first N images of every set (default: all; sets must agree)");
  serve->add_option("--images-per-method", s->images_per_method,
                    "trials per method per rater, on images drawn per rater (default: every image)");
  serve->add_option("--seed", s->seed, "seed of every rater's trial order and sides")->capture_default_str();
  serve->add_option("--view-seconds", s->view_seconds, "how long each pair is shown (SR3: 3)")
      ->capture_default_str();
  serve->add_option("--display", s->display,
                    "the longer side of each image on the page, in CSS pixels (default: "
                    "from the image size, small images enlarged by a whole factor)");
  serve->add_flag("--show-input", s->show_input, "also show the low-res input (SR3's Task-1)");
  serve->add_option("--host", s->host, "address to listen on; other than loopback needs a token")
      ->capture_default_str();
  serve->add_option("--port", s->port, "port (0: any free one)")->capture_default_str();
  serve->add_option("--token", s->token,
                    "study token every request must carry (visible in `ps`: prefer --token-file)");
  serve->add_option("--token-file", s->token_file, "file whose first line is the study token");
  serve->callback([s] { run_serve(*s); });

  auto r = std::make_shared<ReportCli>();
  auto* report = rate_cmd->add_subcommand("report",
                                          "Fool rate per method with 95% intervals, per-rater agreement, "
                                          "a table, STUDY/report.json and STUDY/fool_rate.png");
  report->add_option("--study", r->study, "the study folder")->required();
  report->add_option("--min-ms", r->options.min_ms, "answers faster than this are not counted (ms)")
      ->capture_default_str();
  report->add_option("--bootstrap", r->options.bootstrap, "bootstrap replicates")->capture_default_str();
  report->add_option("--seed", r->options.seed, "bootstrap seed")->capture_default_str();
  report->add_option("--json", r->json, "the JSON report (default STUDY/report.json)");
  report->add_option("--plot", r->plot, "the bar chart (default STUDY/fool_rate.png)");
  report->callback([r] { run_report(*r); });
}

}  // namespace iris::tools
