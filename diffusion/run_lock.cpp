#include "diffusion/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "framework/core/error.h"

namespace iris::diffusion {

namespace {

std::string this_host() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

struct Holder {
  std::string host;
  long pid = 0;
  bool known() const { return !host.empty() && pid > 0; }
  std::string str() const { return "host " + host + ", pid " + std::to_string(pid); }
};

Holder read_holder(int fd) {
  char buf[512] = {0};
  const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  Holder h;
  if (n <= 0) return h;
  std::istringstream in(std::string(buf, static_cast<size_t>(n)));
  in >> h.host >> h.pid;
  if (!in) h = {};
  return h;
}

bool process_alive(long pid) {
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

RunLock::RunLock(const std::string& run_dir, const std::function<void(const std::string&)>& warn)
    : path_((std::filesystem::path(run_dir) / ".lock").string()) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  IRIS_CHECK(fd_ >= 0, "cannot create the run-folder lock '", path_, "': ", std::strerror(errno));
  const Holder previous = read_holder(fd_);
  const std::string me = this_host();
  const auto in_use = [&](const Holder& h) {
    ::close(fd_);
    fd_ = -1;
    IRIS_THROW("run folder '", run_dir, "' is in use by another iris train (",
               h.known() ? h.str() : "holder unknown", "; lock file '", path_,
               "'): wait for it to finish, stop it, or choose another --run folder");
  };
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) in_use(previous);
    // No flock on this file system: the recorded holder decides.
    if (previous.known() && (previous.host != me || process_alive(previous.pid)) &&
        previous.pid != static_cast<long>(::getpid()))
      in_use(previous);
  }
  if (previous.known() && !(previous.host == me && previous.pid == static_cast<long>(::getpid())) && warn)
    warn("taking over the run-folder lock '" + path_ + "' left by a process that no longer holds it (" +
         previous.str() + ")");
  const std::string line = me + " " + std::to_string(static_cast<long>(::getpid())) + "\n";
  const bool written = ::ftruncate(fd_, 0) == 0 &&
                       ::pwrite(fd_, line.data(), line.size(), 0) == static_cast<ssize_t>(line.size());
  if (!written) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    IRIS_THROW("cannot write the run-folder lock '", path_, "': ", std::strerror(err));
  }
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  (void)::ftruncate(fd_, 0);  // failing here only means a later trainer warns about a stale lock
  ::close(fd_);               // releases the flock
}

}  // namespace iris::diffusion
