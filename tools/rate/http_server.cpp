#include "tools/rate/http_server.h"

#include <arpa/inet.h>
#include <httplib.h>

#include <algorithm>
#include <cctype>

#include "framework/core/error.h"
#include "tools/rate/page.h"
#include "tools/rate/token.h"

namespace iris::rate {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

void send(httplib::Response& res, const Reply& r) {
  res.status = r.status;
  res.set_content(r.body, r.content_type.c_str());
}

// The token a request carries: the X-Iris-Token header, else the ?token= query parameter (images are loaded
// by <img> elements, which cannot set headers).
std::string request_token(const httplib::Request& req) {
  if (req.has_header("X-Iris-Token")) return req.get_header_value("X-Iris-Token");
  return req.has_param("token") ? req.get_param_value("token") : "";
}

// A query parameter that must appear exactly once.
bool single_param(const httplib::Request& req, const char* key, std::string& out, Reply& problem) {
  const size_t n = req.get_param_value_count(key);
  if (n != 1) {
    problem = error_reply(400, n == 0 ? std::string("the request has no '") + key + "' parameter"
                                      : std::string("the request has '") + key + "' more than once");
    return false;
  }
  out = req.get_param_value(key);
  return true;
}

}  // namespace

bool is_loopback_address(const std::string& host) {
  const std::string h = lower(host);
  if (h == "localhost" || h == "::1" || h == "[::1]") return true;
  // 127.0.0.0/8 as a numeric address only: a name such as "127.0.0.1.example.org" is someone else's.
  in_addr a{};
  return ::inet_pton(AF_INET, h.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

std::string host_name_of(const std::string& header) {
  if (!header.empty() && header[0] == '[') {
    const auto end = header.find(']');
    return end == std::string::npos ? header : header.substr(1, end - 1);
  }
  const auto colon = header.find(':');
  return colon == std::string::npos ? header : header.substr(0, colon);
}

struct HttpServer::Impl {
  RateService& service;
  ServeOptions options;
  std::function<void(const std::string&)> log;
  httplib::Server server;

  Impl(RateService& s, ServeOptions o, std::function<void(const std::string&)> l)
      : service(s), options(std::move(o)), log(std::move(l)) {}

  // Host and token rules, before any route runs; true when the request was refused (and answered).
  bool refuse(const httplib::Request& req, httplib::Response& res) const {
    if (is_loopback_address(options.host)) {
      const std::string name = host_name_of(req.get_header_value("Host"));
      if (!is_loopback_address(name)) {
        send(res,
             error_reply(403,
                         "this study is served on a loopback address; reach it as localhost or 127.0.0.1 "
                         "(through an SSH tunnel from another machine), not as '" +
                             name + "'"));
        return true;
      }
    }
    if (!options.token_hash.empty() && req.path.rfind("/api/", 0) == 0) {
      const std::string token = request_token(req);
      if (token.empty()) {
        send(res,
             error_reply(401, "this study needs its token: open the link with ?token=... you were given"));
        return true;
      }
      if (!token_matches(token, options.token_hash)) {
        send(res, error_reply(401, "wrong study token"));
        return true;
      }
    }
    return false;
  }

  void routes() {
    server.Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(rate_page_html(), "text/html; charset=utf-8");
    });
    server.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    server.Get("/api/study",
               [this](const httplib::Request&, httplib::Response& res) { send(res, service.study_info()); });
    server.Get("/api/next", [this](const httplib::Request& req, httplib::Response& res) {
      std::string rater;
      Reply problem;
      if (!single_param(req, "rater", rater, problem)) return send(res, problem);
      send(res, service.next(rater));
    });
    server.Get("/api/image", [this](const httplib::Request& req, httplib::Response& res) {
      std::string rater, trial, side;
      Reply problem;
      if (!single_param(req, "rater", rater, problem) || !single_param(req, "trial", trial, problem) ||
          !single_param(req, "side", side, problem))
        return send(res, problem);
      send(res, service.image(rater, trial, side));
    });
    server.Post("/api/answer", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string type = lower(req.get_header_value("Content-Type"));
      if (type.rfind("application/json", 0) != 0)
        return send(res, error_reply(415, "an answer must be sent as application/json"));
      send(res, service.answer(req.body));
    });
  }

  void hooks() {
    // httplib's default pool (8 threads here) is held by idle keep-alive connections of a few browsers;
    // a study with a room full of raters needs more.
    server.new_task_queue = [] { return new httplib::ThreadPool(32); };
    server.set_payload_max_length(options.max_body);
    server.set_read_timeout(10, 0);
    server.set_write_timeout(10, 0);
    server.set_keep_alive_timeout(5);
    // Nothing the study serves may be cached (images of a trial must not be found later by a rater) or
    // framed by another site; the page loads nothing from elsewhere.
    server.set_default_headers(
        {{"Cache-Control", "no-store"},
         {"X-Content-Type-Options", "nosniff"},
         {"X-Frame-Options", "DENY"},
         {"Referrer-Policy", "no-referrer"},
         {"Content-Security-Policy",
          "default-src 'none'; img-src 'self'; connect-src 'self'; "
          "style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action 'none'"}});
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return refuse(req, res) ? httplib::Server::HandlerResponse::Handled
                              : httplib::Server::HandlerResponse::Unhandled;
    });
    // Errors httplib raises itself (no such route, a body over the limit) get a JSON reason too.
    server.set_error_handler(
        httplib::Server::HandlerWithResponse([](const httplib::Request& req, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          std::string why = "refused";
          if (res.status == 404)
            why = "not found: " + req.path + " (the study serves only its page and /api/...)";
          if (res.status == 413) why = "the request body is too large";
          if (res.status == 414) why = "the request line is too long";
          if (res.status == 400) why = "malformed request";
          send(res, error_reply(res.status, why));
          return httplib::Server::HandlerResponse::Handled;
        }));
    server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "internal error";
      try {
        std::rethrow_exception(ep);
      } catch (const Error& e) {
        what = e.message();
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send(res, error_reply(500, what));
    });
    server.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      if (res.status < 400 || !log) return;
      std::string reason;
      try {
        reason = nlohmann::json::parse(res.body).value("error", "");
      } catch (...) {
      }
      log(std::to_string(res.status) + " " + req.method + " " + req.path + ": " + reason);
    });
  }
};

HttpServer::HttpServer(RateService& service, ServeOptions options,
                       std::function<void(const std::string&)> log)
    : impl_(std::make_unique<Impl>(service, std::move(options), std::move(log))) {
  impl_->routes();
  impl_->hooks();
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  const ServeOptions& o = impl_->options;
  IRIS_CHECK(o.port >= 0 && o.port <= 65535, "rate: --port ", o.port, " is not a port number (0-65535)");
  int port = o.port;
  if (o.port == 0) {
    port = impl_->server.bind_to_any_port(o.host);
    IRIS_CHECK(port > 0, "rate: cannot listen on ", o.host, " (any port)");
  } else {
    IRIS_CHECK(impl_->server.bind_to_port(o.host, o.port), "rate: cannot listen on ", o.host, ":", o.port,
               " (in use, or not an address of this machine; --port 0 picks a free port)");
  }
  return port;
}

void HttpServer::run() {
  impl_->server.listen_after_bind();
}

void HttpServer::stop() {
  if (impl_) impl_->server.stop();
}

}  // namespace iris::rate
