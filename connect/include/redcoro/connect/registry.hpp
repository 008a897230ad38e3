#pragma once

#include <redcoro/connect/handle.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace redcoro {

/// Why a connection file was refused: which entry, which field, what is wrong. Never the
/// value of a field, so a password cannot reach a log through it.
struct registry_error {
  std::string entry;  ///< the connection's name; empty for the file as a whole
  std::string field;  ///< "url", "password", "cluster"...; empty when the entry itself is wrong
  std::string message;
  /// "connection file: entry 'cache', field 'port': <message>".
  std::string what() const;
};

class bad_registry : public std::invalid_argument {
 public:
  explicit bad_registry(registry_error e);
  const registry_error& error() const noexcept { return error_; }

 private:
  registry_error error_;
};

/// Looks up an environment variable: `${NAME}` in a connection file. Default: getenv.
using environment = std::function<std::optional<std::string>(std::string_view name)>;

/// What a connection file says: each name's settings, and the default name.
struct connection_file {
  std::map<std::string, handle_config, std::less<>> connections;
  std::string default_name;
};

/// Reads a connection file (JSON; the format is in connect/README.md): every entry is a URL
/// or an object of fields, strings may name environment variables as `${NAME}`. Settings no
/// entry mentions come from `defaults`. Throws bad_registry naming the entry and field.
connection_file parse_connection_file(std::string_view json, const connection_config& defaults = {},
                                      const environment& env = {});

/// Named connections, what a service's "the `cache` connection" means: handles by name, a
/// default name, made from a connection file or added by code.
///
/// \code
///   auto redis = redcoro::connections::from_file(ioc.get_executor(), "/etc/svc/redis.json");
///   redcoro::handle cache = redis.get("cache");
///   co_await cache.async_exec(cmd::set("k", "v"), asio::use_awaitable);
/// \endcode
///
/// Removing a name drops the registry's copy of the handle: its engine closes once no copy is
/// left and the requests in flight through it are answered. Use it from its executor.
class connections {
 public:
  using executor_type = asio::any_io_executor;

  explicit connections(executor_type ex) : ex_(std::move(ex)) {}
  /// Every entry of the file made into a handle (each starts connecting at once).
  static connections from_json(executor_type ex, std::string_view json,
                               const connection_config& defaults = {}, const environment& env = {});
  /// As from_json, from a file; a file that cannot be read is a bad_registry too.
  static connections from_file(executor_type ex, const std::string& path,
                               const connection_config& defaults = {}, const environment& env = {});

  /// The handle of `name`; throws std::out_of_range (naming it) when there is none.
  handle get(std::string_view name) const;
  /// The default connection's handle.
  handle get() const { return get(default_name_); }
  std::optional<handle> find(std::string_view name) const;
  bool has(std::string_view name) const;
  /// The names, sorted.
  std::vector<std::string> list() const;

  /// Makes a handle and adds it under `name`; throws std::invalid_argument when the name is
  /// taken (remove it first), and what the handle's constructor throws.
  handle make(std::string name, handle_config cfg);
  handle make(std::string name, std::string_view url, const connection_config& defaults = {});
  /// Adds an existing handle under `name` (throws when taken).
  void add(std::string name, handle h);
  /// Drops `name`; false when there was none. See the class comment for when it closes.
  bool remove(std::string_view name);

  /// The name get() with no argument uses: "default" unless set, or the file's "default".
  const std::string& default_name() const noexcept { return default_name_; }
  void set_default(std::string name) { default_name_ = std::move(name); }

  /// Closes every handle now (requests in flight fail with error::closed).
  void close_all();

 private:
  executor_type ex_;
  std::map<std::string, handle, std::less<>> handles_;
  std::string default_name_ = "default";
};

}  // namespace redcoro
