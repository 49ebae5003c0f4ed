// The study's web server: RateService behind cpp-httplib (Debian's libcpp-httplib), with the rules that keep
// a study safe to run on a shared machine.
//
// - It listens on 127.0.0.1 unless told otherwise; on any other address a study token is required (the
//   caller checks), and every API request must then carry it (header X-Iris-Token or query ?token=).
// - On a loopback address only requests whose Host is a loopback name (127.0.0.1, localhost, [::1], any
//   port: an SSH tunnel may forward another local port) are served: a web page elsewhere cannot reach the
//   study through DNS rebinding.
// - Routes are fixed (/, /api/study, /api/next, /api/image, /api/answer); nothing is read from a path taken
//   from a request. Bodies are limited to `max_body` bytes (413), answers must be application/json (a form
//   posted by another site cannot set that without the browser asking first).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "tools/rate/service.h"

namespace iris::rate {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  size_t max_body = 4096;
  std::string token_hash;  // empty: no token needed
};

bool is_loopback_address(const std::string& host);  // 127.x.y.z, ::1, localhost
// The host part of a Host header ("localhost:8080" -> "localhost", "[::1]:80" -> "::1").
std::string host_name_of(const std::string& host_header);

class HttpServer {
 public:
  // `log`: one line per refused request (status, method, path, reason; never the token).
  HttpServer(RateService& service, ServeOptions options, std::function<void(const std::string&)> log);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int bind();   // binds (port 0: any free one) and returns the port; throws naming host:port on failure
  void run();   // serves until stop(); bind() first
  void stop();  // from any thread

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace iris::rate
