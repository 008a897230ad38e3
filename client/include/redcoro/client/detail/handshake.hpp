#pragma once

#include <redcoro/client/error.hpp>
#include <redcoro/proto/request.hpp>
#include <redcoro/proto/response.hpp>
#include <redcoro/proto/value.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace redcoro::detail {

/// What a connection says about itself when it connects, for one attempt.
struct handshake_settings {
  int protocol = 3;                ///< 3: HELLO 3, falling back to RESP2; 2: RESP2 only
  std::string username, password;  ///< for AUTH (the config's, or the credentials provider's)
  std::string client_name;
  int database = 0;
  bool fetch_command_table = false;  ///< COMMAND, for the key prefix
  /// ROLE must name this ("master", "slave"): a Sentinel-managed connection refuses a node
  /// that is not (any more) what it was told.
  std::string expect_role;
  /// Commands of the caller's (connection_config::on_handshake): answered out of band or
  /// ignorable; an error reply to one is a note, not a failure.
  const std::function<void(proto::request&)>* extras = nullptr;
  /// When set, `CLIENT TRACKING ON` with these options (BCAST, PREFIX p, OPTIN, NOLOOP) is
  /// sent after HELLO 3, for a client-side cache (tracking_cache.hpp). Not on RESP2: there
  /// invalidations would need a second connection. Refused or not sent, the session still
  /// serves; tracking() says which.
  std::optional<std::vector<std::string>> tracking;
};

/// The connection handshake, sans-I/O: it writes the requests to send and reads their
/// replies. With RESP3 it sends HELLO 3 (with AUTH and SETNAME) alone first, and the rest
/// (SELECT, COMMAND, ROLE, the caller's extras) once the server took it: sent together, a
/// server that refuses HELLO would run them unauthenticated, then again within the RESP2
/// handshake. A server that refuses HELLO gets the RESP2 handshake, all in one request
/// ending with a PING.
class handshake_machine {
 public:
  enum class step : std::uint8_t {
    send,    ///< send the request written to `out`, then call on_replies with its replies
    ready,   ///< connected: protocol(), client_id(), command_reply() tell what was learnt
    failed,  ///< refused: `ec` (auth_failed, handshake_failed, wrong_role) and `reason`
  };
  struct outcome {
    step what = step::send;
    error ec{};          ///< failed: auth_failed, handshake_failed or wrong_role
    std::string reason;  ///< failed: the server's message (AUTH's never holds the password)
    std::string note;    ///< to log: a fallback to RESP2 (info), refused extras (warning)
    bool warning = false;
  };

  /// Writes the first request into `out` (cleared first).
  void start(const handshake_settings& s, proto::request& out);

  /// Reads the replies to the last request; writes the next one into `out` when the outcome
  /// is step::send. The COMMAND reply is moved out of `replies` and kept.
  outcome on_replies(proto::generic_response& replies, proto::request& out);

  /// 3 or 2 once ready.
  int protocol() const noexcept { return stage_ == stage::resp2 ? 2 : 3; }
  /// What HELLO (or CLIENT ID on RESP2) said this connection's id is; -1 if unknown.
  std::int64_t client_id() const noexcept { return client_id_; }
  /// COMMAND's reply when fetch_command_table asked for it, once ready.
  const std::optional<proto::value>& command_reply() const noexcept { return command_; }
  /// True once ready when the server accepted CLIENT TRACKING (handshake_settings::tracking).
  bool tracking() const noexcept { return tracking_; }

 private:
  enum class stage : std::uint8_t { hello, extras, resp2 };
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  void hello(proto::request& out);
  void resp2(proto::request& out);
  // SELECT, COMMAND, ROLE and the caller's extras, noting where their replies are.
  void append_rest(proto::request& out, bool select);
  std::string_view user() const noexcept;

  const handshake_settings* settings_ = nullptr;
  stage stage_ = stage::hello;
  std::size_t command_at_ = none, role_at_ = none, id_at_ = none, extras_at_ = none,
              tracking_at_ = none;
  std::int64_t client_id_ = -1;
  bool tracking_ = false;
  std::optional<proto::value> command_;
};

}  // namespace redcoro::detail
