#include "tests/browser/browser_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace iris::test {

namespace fs = std::filesystem;

namespace {

// A port the kernel says is free now (bound to port 0 and released); another process could take it before
// chromedriver does, which on a test machine is unlikely enough.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

const char* kElementKey = "element-6066-11e4-a52e-4f735466cecf";  // W3C WebDriver's element reference

}  // namespace

std::string find_program(const char* env, const std::vector<std::string>& names) {
  if (const char* v = std::getenv(env); v && *v) return v;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    for (const auto& n : names) {
      const fs::path p = fs::path(dir) / n;
      if (::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p)) return p.string();
    }
  return "";
}

std::string file_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

Child::Child(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
}

Child::~Child() {
  if (pid_ > 0 && running()) stop(SIGKILL);
}

bool Child::running() {
  if (pid_ <= 0) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    pid_ = -1;
    return false;
  }
  return r == 0;
}

int Child::wait(std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() > end) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

int Child::stop(int sig, std::chrono::milliseconds timeout) {
  if (running()) ::kill(pid_, sig);
  return wait(timeout);
}

std::string wait_for(const std::function<std::optional<std::string>()>& ready,
                     std::chrono::milliseconds timeout, const std::string& what) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto v = ready()) return *v;
    if (std::chrono::steady_clock::now() > end) throw std::runtime_error("timed out waiting for " + what);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

std::string base64_decode(const std::string& in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    const int v = value(c);
    if (v < 0) continue;  // padding, line breaks
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

WebDriver::WebDriver(const std::string& chromedriver, const std::string& chromium,
                     const std::string& log_dir) {
  const int port = free_port();
  log_ = (fs::path(log_dir) / "chromedriver.log").string();
  driver_ =
      std::make_unique<Child>(std::vector<std::string>{chromedriver, "--port=" + std::to_string(port)}, log_);
  http_ = std::make_unique<httplib::Client>("127.0.0.1", port);
  http_->set_connection_timeout(2);
  http_->set_read_timeout(
      120);  // starting a browser on a loaded 2-core machine (CI, tests in parallel) is slow
  try {
    wait_for(
        [&]() -> std::optional<std::string> {
          if (!driver_->running()) throw std::runtime_error("chromedriver exited");
          auto r = http_->Get("/status");
          if (r && r->status == 200 && nlohmann::json::parse(r->body)["value"].value("ready", false))
            return "ready";
          return std::nullopt;
        },
        std::chrono::seconds(60), "chromedriver to start");
    const nlohmann::json caps = {
        {"capabilities",
         {{"alwaysMatch",
           {{"browserName", "chrome"},
            {"goog:chromeOptions",
             {{"binary", chromium},
              {"args",
               {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--window-size=1100,720",
                "--user-data-dir=" + (fs::path(log_dir) / "chromium-profile").string()}}}}}}}}};
    const nlohmann::json v = call("POST", "/session", caps);
    session_ = v.at("sessionId").get<std::string>();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(e.what()) + "; chromedriver's log:\n" + file_text(log_));
  }
}

WebDriver::~WebDriver() {
  try {
    if (!session_.empty()) call("DELETE", "/session/" + session_);
  } catch (...) {
  }
  driver_.reset();  // SIGKILL if still running
}

nlohmann::json WebDriver::call(const std::string& method, const std::string& path,
                               const nlohmann::json& body) {
  httplib::Result r = method == "GET"      ? http_->Get(path)
                      : method == "DELETE" ? http_->Delete(path)
                                           : http_->Post(path, body.dump(), "application/json");
  if (!r)
    throw std::runtime_error("WebDriver " + method + " " + path + ": no reply (" +
                             httplib::to_string(r.error()) + ")");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r->body);
  } catch (...) {
    throw std::runtime_error("WebDriver " + method + " " + path +
                             ": reply is not JSON: " + r->body.substr(0, 300));
  }
  if (r->status != 200)
    throw std::runtime_error("WebDriver " + method + " " + path + " failed (" + std::to_string(r->status) +
                             "): " + j.dump().substr(0, 600));
  return j.contains("value") ? j["value"] : j;
}

void WebDriver::go(const std::string& url) {
  call("POST", "/session/" + session_ + "/url", {{"url", url}});
}

nlohmann::json WebDriver::run(const std::string& script, const nlohmann::json& args) {
  return call("POST", "/session/" + session_ + "/execute/sync", {{"script", script}, {"args", args}});
}

void WebDriver::press(const std::string& key) {
  const nlohmann::json actions = {
      {"actions",
       {{{"type", "key"},
         {"id", "keyboard"},
         {"actions", {{{"type", "keyDown"}, {"value", key}}, {{"type", "keyUp"}, {"value", key}}}}}}}};
  call("POST", "/session/" + session_ + "/actions", actions);
}

std::string WebDriver::element(const std::string& css) {
  const nlohmann::json v =
      call("POST", "/session/" + session_ + "/element", {{"using", "css selector"}, {"value", css}});
  return v.at(kElementKey).get<std::string>();
}

void WebDriver::type_into(const std::string& css, const std::string& text) {
  call("POST", "/session/" + session_ + "/element/" + element(css) + "/value", {{"text", text}});
}

void WebDriver::click(const std::string& css) {
  call("POST", "/session/" + session_ + "/element/" + element(css) + "/click");
}

std::string WebDriver::screenshot_png() {
  return base64_decode(call("GET", "/session/" + session_ + "/screenshot").get<std::string>());
}

std::string WebDriver::wait_until(const std::string& script, std::chrono::milliseconds timeout,
                                  const std::string& what) {
  return wait_for(
      [&]() -> std::optional<std::string> {
        const nlohmann::json v = run(script);
        const bool truthy = !(v.is_null() || (v.is_boolean() && !v.get<bool>()) ||
                              (v.is_string() && v.get<std::string>().empty()));
        if (!truthy) return std::nullopt;
        return v.is_string() ? v.get<std::string>() : v.dump();
      },
      timeout, what);
}

}  // namespace iris::test
