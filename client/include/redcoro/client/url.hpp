#pragma once

#include <redcoro/client/config.hpp>
#include <redcoro/client/endpoint.hpp>
#include <redcoro/client/sentinel_config.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace redcoro {

/// What a `redis+cluster://` URL says. The cluster module turns it into a cluster_config:
/// `seeds` become node_address values, `node` is cluster_config::node, and each option set
/// here replaces cluster_config's default.
struct cluster_url {
  /// Same enumerators, in the same order, as redcoro::read_from (cluster module), which the
  /// client module cannot name.
  enum class read_from : std::uint8_t { primary, prefer_replica, replica, any };

  /// The hosts of the URL, in order.
  std::vector<endpoint> seeds;
  /// Settings of every node connection. Its database is always 0; host, port and
  /// unix_socket are not set.
  connection_config node;
  /// `read_from`, `max_redirects`, `refresh_interval`; unset when the URL does not say.
  std::optional<read_from> reads;
  std::optional<std::size_t> max_redirects;
  std::optional<std::chrono::milliseconds> refresh_interval;
};

/// What a URL describes, by its scheme: one server (`redis://`, `rediss://`, `unix://`), a
/// cluster (`redis+cluster://`) or a Sentinel-managed primary (`redis+sentinel://`).
using parsed_url = std::variant<connection_config, cluster_url, sentinel_config>;

/// Why a URL was refused. `part` and `message` are string literals, never text taken from
/// the URL, so an error cannot show a password, however badly the URL is formed.
struct url_error {
  /// Byte offset (from 0) in the URL where the faulty part starts.
  std::size_t position = 0;
  /// What is wrong: "scheme", "userinfo", "host", "port", "db", "path", "primary name",
  /// "fragment", "option" (a name), or an option's canonical name for its value.
  std::string_view part;
  std::string_view message;

  /// "invalid Redis URL: <message> (<part> at position <position>)".
  std::string what() const;
};

/// What the throwing parse functions throw.
class bad_url : public std::invalid_argument {
 public:
  explicit bad_url(const url_error& e);
  const url_error& error() const noexcept { return error_; }

 private:
  url_error error_;
};

/// Parses a Redis URL (the forms and options are in client/README.md, "Connection URLs").
/// Settings the URL does not mention keep their value from `defaults`: set the logger,
/// reconnect policy or handshake hook there, or the password from a secret store when the
/// URL has no credentials. The scheme decides TLS. Returns nullopt and fills `err` when the
/// URL is malformed. No I/O: host names are not resolved, files are not opened.
std::optional<parsed_url> parse_url(std::string_view url, url_error& err,
                                    const connection_config& defaults = {});
/// As above; throws bad_url.
parsed_url parse_url(std::string_view url, const connection_config& defaults = {});

/// As parse_url, for a program that supports only one kind of deployment: a URL of another
/// kind is an error (part "scheme").
std::optional<connection_config> parse_connection_url(std::string_view url, url_error& err,
                                                      const connection_config& defaults = {});
connection_config parse_connection_url(std::string_view url,
                                       const connection_config& defaults = {});
std::optional<cluster_url> parse_cluster_url(std::string_view url, url_error& err,
                                             const connection_config& defaults = {});
cluster_url parse_cluster_url(std::string_view url, const connection_config& defaults = {});
std::optional<sentinel_config> parse_sentinel_url(std::string_view url, url_error& err,
                                                  const connection_config& defaults = {});
sentinel_config parse_sentinel_url(std::string_view url, const connection_config& defaults = {});

/// The settings as a URL, for logs: the password (and `sentinel_password`) is written
/// `****`, whatever it is. Options appear when they differ from a default-constructed
/// connection_config; settings no URL option covers (logger, limits...) do not appear. For
/// settings parse_url made from a URL with no defaults, parsing the result gives the same
/// settings with the password `****`.
std::string to_string(const connection_config& cfg);
std::string to_string(const cluster_url& u);
std::string to_string(const sentinel_config& s);
std::string to_string(const parsed_url& u);

}  // namespace redcoro
