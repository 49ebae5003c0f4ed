// Driving a real browser from a doctest: child processes (the iris server, chromedriver) and a minimal
// client of the W3C WebDriver protocol (https://www.w3.org/TR/webdriver2/) spoken over HTTP with
// cpp-httplib's client, so the browser tests need no Python or Selenium.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace httplib {
class Client;
}

namespace iris::test {

// The first of `names` that is an executable file on PATH (or the value of the environment variable `env`
// when it is set); empty when there is none.
std::string find_program(const char* env, const std::vector<std::string>& names);

// A child process with stdout and stderr appended to `log_path`. The destructor kills it (SIGKILL) if it is
// still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log_path);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `sig` and waits up to `timeout` for the exit; returns the exit status (128 + signal for a killed
  // process), or -1 when it did not end in time.
  int stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(20));
  int wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// Polls `ready` every 25 ms until it returns a value or `timeout` passes (then throws, naming `what`).
std::string wait_for(const std::function<std::optional<std::string>()>& ready,
                     std::chrono::milliseconds timeout, const std::string& what);

// The whole content of a file ("" when it does not exist).
std::string file_text(const std::string& path);

// W3C key values for the special keys the tests press.
inline const std::string kArrowLeft = "\xEE\x80\x92";   // U+E012
inline const std::string kArrowRight = "\xEE\x80\x94";  // U+E014
inline const std::string kEnter = "\xEE\x80\x87";       // U+E007

// A chromedriver process and one headless Chromium session in it.
class WebDriver {
 public:
  // Starts `chromedriver` on a free loopback port and opens a session of the browser `chromium` (headless,
  // no sandbox: CI runs as root in a container), logging to files in `log_dir`. Throws with the driver's
  // log when either does not come up.
  WebDriver(const std::string& chromedriver, const std::string& chromium, const std::string& log_dir);
  ~WebDriver();  // ends the session and the driver

  void go(const std::string& url);
  // Runs `script` (a function body; `arguments` holds `args`) in the page and returns its value.
  nlohmann::json run(const std::string& script, const nlohmann::json& args = nlohmann::json::array());
  // Presses and releases one key (a character or a W3C key value above) as a user would: to the focused
  // element, through the browser's input pipeline.
  void press(const std::string& key);
  void type_into(const std::string& css, const std::string& text);
  void click(const std::string& css);
  std::string screenshot_png();  // the viewport, PNG bytes

  // Waits until `script`'s value is truthy; returns it as text.
  std::string wait_until(const std::string& script, std::chrono::milliseconds timeout,
                         const std::string& what);

 private:
  nlohmann::json call(const std::string& method, const std::string& path,
                      const nlohmann::json& body = nlohmann::json::object());
  std::string element(const std::string& css);

  std::unique_ptr<Child> driver_;
  std::unique_ptr<httplib::Client> http_;
  std::string session_, log_;
};

std::string base64_decode(const std::string& in);

}  // namespace iris::test
