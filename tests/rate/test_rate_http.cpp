// tools/rate/http_server.h over real sockets (in-process, a free loopback port): the page and API are
// served; a missing or wrong token, a foreign Host, an oversized body, a wrong content type, a path in a
// request, an unknown route and repeated parameters are refused with a JSON reason, and none of them
// changes the record.
#include <doctest/doctest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "tests/common/test_util.h"
#include "tests/rate/rate_test_util.h"
#include "tools/rate/http_server.h"
#include "tools/rate/service.h"
#include "tools/rate/token.h"

using namespace iris;
using namespace iris::rate;
using nlohmann::json;

namespace {

// A study served on 127.0.0.1 for the duration of a test case.
struct Served {
  test::TempDir root{"rate-http"};
  std::string dir = root.file("study");
  StudyConfig study;
  std::unique_ptr<RateService> service;
  std::unique_ptr<HttpServer> server;
  std::thread thread;
  int port = 0;
  std::vector<std::string> refused;
  std::mutex mu;

  explicit Served(const std::string& token = "") {
    study = test::make_study(dir, test::write_two_methods(root.path(), 3));
    service = std::make_unique<RateService>(dir, study, [](const std::string&) {});
    ServeOptions o;
    o.port = 0;
    o.token_hash = token.empty() ? "" : hash_token(token);
    server = std::make_unique<HttpServer>(*service, o, [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu);
      refused.push_back(line);
    });
    port = server->bind();
    thread = std::thread([this] { server->run(); });
  }
  ~Served() {
    server->stop();
    thread.join();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5);
    c.set_read_timeout(10);
    return c;
  }
  std::string record() const { return test::read_text(answers_file(dir)); }
};

std::string error_of(const httplib::Result& r) {
  try {
    return json::parse(r->body).value("error", "");
  } catch (...) {
    return "(not JSON: " + r->body + ")";
  }
}

void check_status(const httplib::Result& r, int status, const std::string& text) {
  REQUIRE(r);
  INFO(r->body);
  CHECK(r->status == status);
  CHECK(error_of(r).find(text) != std::string::npos);
}

std::string answer(const std::string& rater, int trial, const std::string& choice) {
  return json{{"rater", rater}, {"trial", trial}, {"choice", choice}, {"response_ms", 700}}.dump();
}

}  // namespace

TEST_CASE("the page and the API over HTTP, with safe headers") {
  Served s;
  auto c = s.client();
  auto page = c.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type").find("text/html") == 0);
  CHECK(page->body.find("data-state") != std::string::npos);
  CHECK(page->get_header_value("Cache-Control") == "no-store");
  CHECK(page->get_header_value("X-Frame-Options") == "DENY");
  CHECK(page->get_header_value("Content-Security-Policy").find("default-src 'none'") == 0);
  auto info = c.Get("/api/study");
  REQUIRE(info);
  CHECK(json::parse(info->body)["trials"] == 6);
  auto next = c.Get("/api/next?rater=ann");
  REQUIRE(next);
  CHECK(json::parse(next->body)["trial"] == 0);
  auto img = c.Get("/api/image?rater=ann&trial=0&side=left");
  REQUIRE(img);
  CHECK(img->status == 200);
  CHECK(img->get_header_value("Content-Type") == "image/png");
  CHECK(img->body.substr(1, 3) == "PNG");
  auto ok = c.Post("/api/answer", answer("ann", 0, "left"), "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  CHECK(json::parse(ok->body)["answered"] == 1);
  CHECK(s.service->answers_recorded() == 1);
}

TEST_CASE("bad requests are refused with a reason and leave the record unchanged") {
  Served s;
  auto c = s.client();
  REQUIRE(c.Get("/api/next?rater=ann"));
  REQUIRE(c.Post("/api/answer", answer("ann", 0, "right"), "application/json")->status == 200);
  const std::string before = s.record();

  check_status(c.Post("/api/answer", answer("ann", 0, "left"), "application/json"), 409, "already answered");
  check_status(c.Post("/api/answer", answer("ann", 5, "left"), "application/json"), 409,
               "not the current trial of rater 'ann'");
  check_status(c.Post("/api/answer", answer("ann", 6, "left"), "application/json"), 404, "unknown trial 6");
  check_status(c.Post("/api/answer", answer("ann", 1, "left"), "text/plain"), 415, "application/json");
  check_status(c.Post("/api/answer", "{\"rater\":", "application/json"), 400, "not valid JSON");
  // Over the 4 KiB limit: refused before the handler runs.
  json big = json::parse(answer("ann", 1, "left"));
  big["padding"] = std::string(10000, 'x');
  check_status(c.Post("/api/answer", big.dump(), "application/json"), 413, "too large");
  // Paths: no route reads a file named by a request.
  for (const char* path : {"/study.json", "/answers.jsonl", "/images/truth/000000.png", "/../study.json",
                           "/api/../study.json", "/%2e%2e/study.json", "/api/image/../../study.json"}) {
    INFO(path);
    auto r = c.Get(path);
    REQUIRE(r);
    CHECK(r->status >= 400);
    CHECK(r->body.find("iris-rate-study") == std::string::npos);
    CHECK(r->body.find("\x89PNG") == std::string::npos);
  }
  check_status(c.Get("/api/image?rater=ann&trial=1&side=..%2F..%2Fstudy.json"), 400, "'side'");
  check_status(c.Get("/api/image?rater=ann&trial=..%2Fstudy.json&side=left"), 400, "'trial'");
  check_status(c.Get("/api/image?rater=..%2F..&trial=1&side=left"), 400, "rater id");
  check_status(c.Get("/api/next?rater=ann&rater=bob"), 400, "'rater' more than once");
  check_status(c.Get("/api/next"), 400, "no 'rater'");
  check_status(c.Get("/nothing"), 404, "not found");
  // Another site's name for this machine (DNS rebinding) is not served.
  check_status(c.Get("/api/study", {{"Host", "evil.example:8080"}}), 403, "loopback");
  CHECK(c.Get("/api/study", {{"Host", "localhost:9999"}})->status == 200);  // an SSH tunnel's local port
  CHECK(s.record() == before);
  CHECK(s.service->answers_recorded() == 1);
  std::lock_guard<std::mutex> lock(s.mu);
  CHECK(s.refused.size() >= 10);
}

TEST_CASE("a study with a token refuses requests without it, the page itself needs none") {
  const std::string token = "s3cret-token-123";
  Served s(token);
  auto c = s.client();
  CHECK(c.Get("/")->status == 200);
  check_status(c.Get("/api/study"), 401, "needs its token");
  check_status(c.Get("/api/study?token=wrong-token"), 401, "wrong study token");
  check_status(c.Get("/api/next?rater=ann", {{"X-Iris-Token", "nope-nope"}}), 401, "wrong study token");
  check_status(c.Post("/api/answer", answer("ann", 0, "left"), "application/json"), 401, "needs its token");
  check_status(c.Get("/api/image?rater=ann&trial=0&side=left"), 401, "needs its token");
  CHECK(s.record().empty());
  CHECK(c.Get("/api/study?token=" + token)->status == 200);
  CHECK(c.Get("/api/next?rater=ann", {{"X-Iris-Token", token}})->status == 200);
  CHECK(c.Get("/api/image?rater=ann&trial=0&side=right&token=" + token)->status == 200);
  auto ok = c.Post("/api/answer", {{"X-Iris-Token", token}}, answer("ann", 0, "left"), "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 200);
  CHECK(s.service->answers_recorded() == 1);
}

TEST_CASE("is_loopback_address and host_name_of") {
  CHECK(is_loopback_address("127.0.0.1"));
  CHECK(is_loopback_address("127.0.1.1"));
  CHECK(is_loopback_address("localhost"));
  CHECK(is_loopback_address("LOCALHOST"));
  CHECK(is_loopback_address("::1"));
  CHECK_FALSE(is_loopback_address("0.0.0.0"));
  CHECK_FALSE(is_loopback_address("10.0.0.5"));
  CHECK_FALSE(is_loopback_address("localhost.evil.example"));
  CHECK_FALSE(is_loopback_address("127.0.0.1.evil.example"));
  CHECK(host_name_of("localhost:8080") == "localhost");
  CHECK(host_name_of("[::1]:8080") == "::1");
  CHECK(host_name_of("example.org") == "example.org");
}
