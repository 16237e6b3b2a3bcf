#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/validate.h"

namespace llmbox::common {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Pipe {
  int read = -1;
  int write = -1;
  ~Pipe() { Close(); }
  void Close() {
    CloseRead();
    CloseWrite();
  }
  void CloseRead() {
    if (read >= 0) ::close(read);
    read = -1;
  }
  void CloseWrite() {
    if (write >= 0) ::close(write);
    write = -1;
  }
  bool Open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read = fds[0];
    write = fds[1];
    return true;
  }
};

// Resolves a program name through the PATH of the child's environment.
std::string Resolve(const std::string& program, const std::map<std::string, std::string>& env) {
  if (program.find('/') != std::string::npos) return program;
  auto path = env.find("PATH");
  if (path == env.end()) return program;
  for (absl::string_view dir : absl::StrSplit(path->second, ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/", program);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return program;
}

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Appends what can be read from `fd`; returns false at EOF or error.
bool Drain(int fd, std::string* out, size_t cap, bool* truncated) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      const size_t room = cap > out->size() ? cap - out->size() : 0;
      if (static_cast<size_t>(n) > room) *truncated = true;
      out->append(buf, std::min(room, static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
}

}  // namespace

std::map<std::string, std::string> EnvFromAllowlist(const std::vector<std::string>& names) {
  std::map<std::string, std::string> env;
  for (const auto& name : names) {
    if (const char* value = std::getenv(name.c_str()); value != nullptr) env[name] = value;
  }
  return env;
}

absl::StatusOr<SubprocessResult> PosixSubprocessRunner::Run(const SubprocessRequest& request) {
  if (request.argv.empty() || request.argv[0].empty()) {
    return absl::InvalidArgumentError("subprocess: the command (argv) is empty");
  }
  for (const auto& [key, value] : request.env) {
    if (key.empty() || key.find('=') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("subprocess: bad environment variable name ", QuoteForMessage(key)));
    }
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe
  // calls are allowed.
  const std::string program = Resolve(request.argv[0], request.env);
  std::vector<char*> argv;
  for (const auto& arg : request.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (const auto& [key, value] : request.env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  const char* dir = request.working_dir.empty() ? nullptr : request.working_dir.c_str();

  Pipe in, out, err, exec_error;
  if (!in.Open() || !out.Open() || !err.Open() || !exec_error.Open()) {
    return absl::InternalError(absl::StrCat("subprocess: pipe: ", std::strerror(errno)));
  }
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("subprocess: fork: ", std::strerror(errno)));
  if (pid == 0) {
    // Child: own process group (so a timeout kills everything it started), pipes on 0-2.
    ::setpgid(0, 0);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in.read, 0);
    ::dup2(out.write, 1);
    ::dup2(err.write, 2);
    // Every other descriptor closes on exec: ours are O_CLOEXEC, and inherited strays go.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (dir != nullptr && ::chdir(dir) != 0) {
      const int e = errno;
      (void)!::write(exec_error.write, &e, sizeof(e));
      ::_exit(127);
    }
    ::execve(program.c_str(), argv.data(), envp.data());
    const int e = errno;
    (void)!::write(exec_error.write, &e, sizeof(e));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so the group exists before we might signal it
  in.CloseRead();
  out.CloseWrite();
  err.CloseWrite();
  exec_error.CloseWrite();

  int child_errno = 0;
  ssize_t got;
  do {
    got = ::read(exec_error.read, &child_errno, sizeof(child_errno));
  } while (got < 0 && errno == EINTR);
  if (got == sizeof(child_errno)) {
    ::waitpid(pid, nullptr, 0);
    const std::string what = absl::StrCat(
        "subprocess: cannot run ", QuoteForMessage(request.argv[0]),
        dir != nullptr ? absl::StrCat(" in ", QuoteForMessage(request.working_dir)) : "", ": ",
        std::strerror(child_errno));
    if (child_errno == ENOENT) return absl::NotFoundError(what);
    if (child_errno == EACCES) return absl::PermissionDeniedError(what);
    return absl::InternalError(what);
  }

  SubprocessResult result;
  SetNonBlocking(in.write);
  SetNonBlocking(out.read);
  SetNonBlocking(err.read);
  size_t written = 0;
  if (request.stdin_data.empty()) in.CloseWrite();
  const auto deadline = start + request.timeout;
  bool kill_pending = false;  // SIGTERM sent, SIGKILL due at kill_at
  Clock::time_point kill_at = deadline;
  int status = 0;
  // "exited" is seen with WNOWAIT: the child stays a zombie until the end, so its pid (our
  // process group id) cannot be reused by another process while we may still signal it.
  bool exited = false;
  while (!exited || out.read >= 0 || err.read >= 0) {
    const auto now = Clock::now();
    if (!result.timed_out && now >= deadline) {
      result.timed_out = true;
      ::kill(-pid, SIGTERM);
      kill_pending = true;
      kill_at = now + request.kill_grace;
    }
    if (kill_pending && now >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_pending = false;
    }
    if (!exited) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid) {
        exited = true;
      }
    }
    if (exited && result.timed_out && !kill_pending) {
      // Killed group: whatever still holds the pipes is gone or going; stop reading.
      break;
    }
    std::vector<pollfd> fds;
    if (out.read >= 0) fds.push_back({out.read, POLLIN, 0});
    if (err.read >= 0) fds.push_back({err.read, POLLIN, 0});
    if (in.write >= 0) fds.push_back({in.write, POLLOUT, 0});
    auto next = exited ? now + milliseconds(50) : now + milliseconds(20);
    if (!result.timed_out) next = std::min(next, deadline);
    if (kill_pending) next = std::min(next, kill_at);
    const int wait_ms = static_cast<int>(
        std::max<int64_t>(0, std::chrono::duration_cast<milliseconds>(next - now).count()));
    if (fds.empty()) {
      if (exited) break;
      ::poll(nullptr, 0, wait_ms);
      continue;
    }
    ::poll(fds.data(), fds.size(), wait_ms);
    if (out.read >= 0 &&
        !Drain(out.read, &result.stdout_data, request.max_output_bytes, &result.stdout_truncated)) {
      out.CloseRead();
    }
    if (err.read >= 0 &&
        !Drain(err.read, &result.stderr_data, request.max_output_bytes, &result.stderr_truncated)) {
      err.CloseRead();
    }
    if (in.write >= 0) {
      // MSG_NOSIGNAL does not apply to pipes; a child that closed stdin gives EPIPE, and the
      // SIGPIPE it raises is blocked and consumed here so it cannot kill us.
      sigset_t pipe_set, old;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
      ssize_t n = ::write(in.write, request.stdin_data.data() + written,
                          request.stdin_data.size() - written);
      const int e = errno;
      if (n < 0 && e == EPIPE) {
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_set, nullptr, &zero) > 0) {
        }
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      if (n > 0) written += static_cast<size_t>(n);
      if ((n < 0 && e != EAGAIN && e != EINTR) || written == request.stdin_data.size()) {
        in.CloseWrite();
      }
    }
    // The direct child exited but something it started keeps the pipes open: wait for the
    // timeout, which kills the group.
  }
  // Nothing of the group survives us, whatever happened; then the child is reaped.
  ::kill(-pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  result.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
  return result;
}

}  // namespace llmbox::common
