// Runs a program against a redis-server of its own, so that CTest can run the client
// examples:
//   with_server [--cluster] <program> [args...]
// starts redis-server on a free loopback port (with --cluster: a cluster of 3 primaries and
// 3 replicas, and the port is one of its nodes), runs `program args... <port>`, stops the
// server, and exits with the program's exit code (128 + the signal if it was killed).
#include "support/redis_cluster.hpp"
#include "support/redis_server.hpp"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const bool cluster = argc > 1 && std::string(argv[1]) == "--cluster";
  const int first = cluster ? 2 : 1;
  if (argc <= first) {
    std::fprintf(stderr, "usage: with_server [--cluster] <program> [args...]\n");
    return 2;
  }
  try {
    // Stopped when this scope ends, however it ends.
    std::unique_ptr<redcoro::test::redis_server> server;
    std::unique_ptr<redcoro::test::redis_cluster> nodes;
    if (cluster)
      nodes = std::make_unique<redcoro::test::redis_cluster>();
    else
      server = std::make_unique<redcoro::test::redis_server>();
    std::string port = std::to_string(cluster ? nodes->ports()[0] : server->port());
    std::vector<char*> args(argv + first, argv + argc);
    args.push_back(port.data());
    args.push_back(nullptr);

    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("cannot fork");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with us, e.g. when CTest times us out
      ::execvp(args[0], args.data());
      std::perror(args[0]);
      ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) throw std::runtime_error("waitpid failed");
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
      std::fprintf(stderr, "with_server: %s killed by signal %d\n", args[0], WTERMSIG(status));
      return 128 + WTERMSIG(status);
    }
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "with_server: %s\n", e.what());
    return 2;
  }
}
