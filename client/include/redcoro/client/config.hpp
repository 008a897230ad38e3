#pragma once

#include <redcoro/client/endpoint.hpp>
#include <redcoro/proto/parser.hpp>
#include <redcoro/proto/request.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace spdlog {
class logger;
}

namespace redcoro {

/// How async_run waits between connection attempts: exponential backoff with jitter.
struct reconnect_policy {
  /// Delay before the first retry; each failed attempt multiplies it by `multiplier`.
  std::chrono::milliseconds min_delay{100};
  std::chrono::milliseconds max_delay{5000};
  double multiplier = 2.0;
  /// Each delay is drawn uniformly from [delay * (1 - jitter), delay], so that many clients
  /// restarted together do not reconnect in lockstep.
  double jitter = 0.5;
  /// Failed attempts in a row after which async_run gives up with the last error; 0 retries
  /// forever. A successful handshake resets the count.
  std::size_t max_attempts = 0;
};

/// TLS on top of TCP (OpenSSL through Asio). Off unless `enabled`; when on, the server's
/// certificate is verified by default, against `ca_file`/`ca_path` or, when both are empty,
/// the system's default CA store; the connection speaks TLS 1.2 or newer.
struct tls_config {
  bool enabled = false;
  /// PEM file of CA certificates, and/or a directory of hashed CA certificates.
  std::string ca_file;
  std::string ca_path;
  /// Verify the server's certificate chain and its name. Turn off only for tests.
  bool verify_peer = true;
  /// The name sent as SNI and checked against the certificate (DNS names and IP addresses
  /// in subjectAltName). Empty: the host dialled (connection_config::host, or the address
  /// provider's).
  std::string server_name;
  /// Client certificate (PEM chain) and private key, for servers that require mutual TLS
  /// (`tls-auth-clients yes`).
  std::string cert_file;
  std::string key_file;
};

/// A user name and password, as a credentials provider gives them.
struct credentials {
  std::string username;  ///< empty: the `default` user
  std::string password;
};

/// What an address provider (connection_config::address_provider) answers: the address to
/// dial, or none, with the reason when it knows one. `done(endpoint{"10.0.0.7", 6379})`,
/// `done(std::nullopt)` and `done(std::optional<endpoint>(...))` all work.
struct address_answer {
  address_answer(endpoint e) : address(std::move(e)) {}                 // NOLINT: implicit
  address_answer(std::optional<endpoint> e) : address(std::move(e)) {}  // NOLINT: implicit
  address_answer(std::nullopt_t) {}                                     // NOLINT: implicit
  /// No address, because of `why` (error::no_sentinel_reachable, say).
  address_answer(std::error_code why) : reason(why) {}  // NOLINT: implicit

  std::optional<endpoint> address;
  /// Without an address: why there is none; empty means error::no_address.
  std::error_code reason;
};

class request_observer;  // metrics.hpp

/// Everything a connection needs to know. Every field has a usable default: a
/// default-constructed config talks to 127.0.0.1:6379 as the default user.
struct connection_config {
  /// TCP target. Ignored when `unix_socket` or `address_provider` is set.
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  /// When set, asked at every connect for the host and port to dial instead of `host` and
  /// `port` (sentinel_client sets it: the sentinels name the primary). It may answer later:
  /// call `done` once, on any thread, with the address, or with none (optionally saying why)
  /// to fail this attempt; the answer is taken on the connection's executor. An attempt
  /// without an address is logged with the reason and retried with the reconnect backoff;
  /// when the provider answered "none", requests waiting for the connection fail at once with
  /// the reason (error::no_address when it gave none), as after a refused login. No answer
  /// within connect_timeout fails the attempt with error::no_address, and requests keep
  /// waiting. TLS names (tls.server_name empty) and logs use the address dialled.
  std::function<void(std::function<void(address_answer)> done)> address_provider;
  /// Path of a Unix domain socket; when not empty it is used instead of host and port (but
  /// not instead of an address_provider).
  std::string unix_socket;
  /// TLS settings (TCP only).
  tls_config tls;

  /// Credentials for AUTH (sent inside HELLO). An empty username with a password means the
  /// `default` user. Never logged.
  std::string username;
  std::string password;
  /// When set, asked for the user name and password at every connect (and every
  /// re-authentication) instead of using `username` and `password`: for short-lived tokens
  /// and rotated passwords. It may answer later (from a token service): call `done` once,
  /// on any thread, with the credentials, or nullopt to fail this attempt (retried with the
  /// reconnect backoff). An answer later than connect_timeout fails the attempt.
  std::function<void(std::function<void(std::optional<credentials>)> done)> credentials_provider;
  /// When not 0, the credentials are sent again (AUTH) on the live connection this often,
  /// without dropping it: an expiring token is renewed before the server would refuse it. A
  /// refused re-AUTH is logged and tried again a second later; the connection keeps serving
  /// as the user it was (the server keeps the last accepted login).
  std::chrono::milliseconds reauth_interval{0};
  /// When not 0, a connection that has lived this long (less a random 0-10%, so that a fleet
  /// does not redial at once) is replaced gracefully: the new one is dialled while the old
  /// one still serves; then new requests wait while those in flight are answered, the old one
  /// closes and the new one does its handshake and takes the waiting requests. Nothing fails,
  /// nothing is sent twice. For load balancers and proxies in front of Redis. Not applied to
  /// a connection carrying subscriptions (a subscriber's, or one that sent SUBSCRIBE itself)
  /// nor to the dedicated connections of a client's pool (they may hold WATCH state). With an
  /// address_provider, the provider is asked again where the new one goes.
  std::chrono::milliseconds max_lifetime{0};
  /// Counts requests by outcome, error replies by code, bytes, reconnects and pushes, and
  /// keeps latency histograms (overall and per command) that connection::metrics() reads
  /// (client/README.md, "Metrics"). On by default: it costs one clock read per request.
  bool metrics = true;
  /// Told of every request started and finished on this connection (metrics.hpp), for
  /// tracing; none by default.
  std::shared_ptr<request_observer> observer;
  /// SELECT-ed after the handshake when not 0.
  int database = 0;
  /// When not empty, ROLE must say this ("master" or "slave") or the connection is refused
  /// with error::wrong_role: a Sentinel-managed connection never writes to a demoted primary.
  std::string expect_role;
  /// CLIENT SETNAME (sent inside HELLO); empty: none.
  std::string client_name;
  /// Prepended to every key this connection sends, in every command, wrapped or not (the
  /// positions come from the server's `COMMAND` reply, fetched during the first handshake),
  /// and to the patterns of `KEYS` and `SCAN ... MATCH`. Empty: no prefix.
  std::string key_prefix;
  /// With a key_prefix: replies that name keys give them without it (the keys of `SCAN` and
  /// `KEYS`; the key of `BLPOP`, `BRPOP`, `BZPOPMIN`, `BZPOPMAX`, `BLMPOP`, `BZMPOP`, `LMPOP`,
  /// `ZMPOP`; the stream names of `XREAD` and `XREADGROUP`; the key in keyspace notifications,
  /// `__keyspace@N__:<key>` channels and `__keyevent@N__:*` payloads), so a name read back can
  /// be sent again. A name that does not start with the prefix is left as it is. False: they
  /// come back as the server holds them, prefix included.
  bool strip_key_prefix = true;
  /// 3: HELLO 3, falling back to RESP2 when the server rejects HELLO. 2: RESP2 only.
  int protocol = 3;

  /// Resolving and connecting, per attempt.
  std::chrono::milliseconds connect_timeout{5000};
  /// Default time a request may take, from the call to its last reply, including time spent
  /// waiting for a connection; 0: no limit. A request can set its own
  /// (request::config::timeout), which blocking commands such as BLPOP should do.
  std::chrono::milliseconds request_timeout{10000};
  /// When nothing was read for this long and nothing is in flight, a PING is sent; if it is
  /// not answered within another interval the connection is dropped and re-established.
  /// 0 disables the health check.
  std::chrono::milliseconds health_check_interval{5000};
  reconnect_policy reconnect;

  /// Requests waiting or in flight on the connection at most; more fail at once with
  /// error::queue_full. 0: no bound.
  std::size_t max_queued_requests = 65536;
  /// Requests still waiting to be written when the connection drops fail at once with
  /// error::not_connected instead of waiting for the next connection. cluster_client sets
  /// it on its node connections, so that it can send such requests to the node that took
  /// over instead.
  bool fail_waiting_on_disconnect = false;
  /// redcoro::client only: dedicated connections (blocking commands, WATCH) at most, made
  /// on first use.
  std::size_t pool_size = 4;
  /// Push messages (pub/sub, tracking invalidations) kept until async_receive_push takes
  /// them. When full, the connection stops reading until there is room: nothing is dropped.
  std::size_t max_queued_pushes = 8192;

  /// Called on every connect to append commands to the handshake request, so
  /// they run before anything else on the new connection; the subscriber re-subscribes
  /// this way. Only commands answered out of band (SUBSCRIBE and friends) or whose replies
  /// may be ignored belong here: an error reply to one of them is logged, and the
  /// connection goes on. Empty: nothing.
  std::function<void(proto::request&)> on_handshake;

  /// Bounds on what the server may send; see proto::parser_config.
  proto::parser_config limits;
  /// The read buffer starts at this size. A reply larger than it grows it once, to the size
  /// its header announces (for blobs; by doubling for long lines).
  std::size_t read_buffer_size = 16 * 1024;
  /// After a reply that grew the read buffer past this size, it shrinks back to
  /// read_buffer_size, so one large reply does not pin its memory for the connection's life.
  std::size_t read_buffer_keep = 1024 * 1024;

  /// Where connection events go (connects, disconnects, retries, protocol errors; never
  /// passwords or payloads). Null: the logger registered in spdlog as "redcoro", created on
  /// first use with level `warn` if there is none. Set its level to `info` to see connects.
  std::shared_ptr<spdlog::logger> logger;
};

namespace detail {
/// The logger of connection_config::logger's default: "redcoro" from spdlog's registry, made (level
/// warn) if it is not there.
std::shared_ptr<spdlog::logger> default_logger();
}  // namespace detail

}  // namespace redcoro
