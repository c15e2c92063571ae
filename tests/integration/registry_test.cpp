// The registry across sessions and roles.
#include "session.hpp"

using so_test::Session;

TEST(Registry, ChangeCommittedBySessionIsSeenByTheNextStatement) {
    Session a, b;
    std::string key = so_test::register_local_backend(a, R"({"base_url": "http://one.example.com/f"})");
    std::string obj = "'{\"backend\": \"" + key + "\", \"filename\": \"x.txt\"}'::stored_object";
    EXPECT_EQ(b.value("SELECT so_sign(" + obj + ") LIKE 'http://one.example.com/f/x.txt?%'"), "t");

    // Uncommitted: the other session still signs with the old URL.
    a.exec("BEGIN");
    a.exec("SELECT so_alter_backend('" + key + "', options => '{\"base_url\": \"http://two.example.com/g\"}')");
    EXPECT_EQ(a.value("SELECT so_sign(" + obj + ") LIKE 'http://two.example.com/g/x.txt?%'"), "t");
    EXPECT_EQ(b.value("SELECT so_sign(" + obj + ") LIKE 'http://one.example.com/f/x.txt?%'"), "t");
    a.exec("COMMIT");
    // Committed: the very next statement of the other session sees it.
    EXPECT_EQ(b.value("SELECT so_sign(" + obj + ") LIKE 'http://two.example.com/g/x.txt?%'"), "t");

    // A new backend, and its removal, likewise.
    a.exec("SELECT so_unregister_backend('" + key + "')");
    EXPECT_EQ(b.sqlstate("SELECT so_sign(" + obj + ")"), "42704");
    EXPECT_NE(b.last_error().find("storage backend \"" + key + "\" does not exist"), std::string::npos);
}

TEST(Registry, RolledBackChangeIsNeverSeen) {
    Session a, b;
    std::string key = so_test::register_local_backend(a, R"({"base_url": "http://one.example.com/f"})");
    std::string obj = "'{\"backend\": \"" + key + "\", \"filename\": \"x.txt\"}'::stored_object";
    a.exec("BEGIN");
    a.exec("SELECT so_alter_backend('" + key + "', options => '{\"base_url\": \"http://two.example.com/g\"}')");
    a.exec("ROLLBACK");
    EXPECT_EQ(a.value("SELECT so_sign(" + obj + ") LIKE 'http://one.example.com/f/x.txt?%'"), "t");
    EXPECT_EQ(b.value("SELECT so_sign(" + obj + ") LIKE 'http://one.example.com/f/x.txt?%'"), "t");
}

TEST(Registry, OrdinaryRoleCannotRegisterOrReadTheSigningSecret) {
    Session admin;
    admin.exec("DROP ROLE IF EXISTS so_it_user");
    admin.exec("CREATE ROLE so_it_user LOGIN");
    std::string key = so_test::register_local_backend(admin, R"({"base_url": "http://files.example.com"})");
    std::string secret = admin.value("SELECT options->>'signing_secret' FROM so_backends WHERE key = '" + key + "'");
    ASSERT_EQ(secret.size(), 64u);
    {
        Session user("so_it_user");
        EXPECT_EQ(user.sqlstate("SELECT so_register_backend('mine', 's3://my-bucket')"), "42501");
        EXPECT_EQ(user.sqlstate("INSERT INTO so_backends (key, url) VALUES ('mine', 's3://my-bucket')"), "42501");
        EXPECT_EQ(user.sqlstate("SELECT options FROM so_backends"), "42501");
        EXPECT_EQ(user.sqlstate("SELECT so_alter_backend('" + key + "', options => '{\"base_url\": \"http://evil\"}')"), "42501");
        // What the role can see never holds the secret.
        std::string listing = user.value("SELECT string_agg(t::text, ' ') FROM so_backend_info t");
        EXPECT_EQ(listing.find(secret), std::string::npos);
        // It uses the backend through the functions once granted.
        EXPECT_EQ(user.sqlstate("SELECT so_put('" + key + "', 'user.txt', 'x')"), "42501");
        admin.exec("SELECT so_grant('" + key + "', 'read, write', 'so_it_user')");
        EXPECT_EQ(user.sqlstate("SELECT so_put('" + key + "', 'user.txt', 'x')"), "");
        std::string url = user.value("SELECT so_sign(so_stat('" + key + "', 'user.txt'))");
        EXPECT_EQ(url.find(secret), std::string::npos);
        // Errors never carry it either.
        user.sqlstate("SELECT so_sign(so_stat('" + key + "', 'user.txt'), download_as => 'x')");
        EXPECT_EQ(user.last_error().find(secret), std::string::npos);
    }
    admin.exec("SELECT so_unregister_backend('" + key + "')");
    admin.exec("DROP ROLE so_it_user");
}
