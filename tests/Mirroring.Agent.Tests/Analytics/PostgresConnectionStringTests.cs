using Mirroring.Agent.Analytics;

namespace Mirroring.Agent.Tests.Analytics;

public sealed class PostgresConnectionStringTests
{
    [Theory]
    [InlineData("postgresql://vrmirror@db1:6432/flows", true)]
    [InlineData("postgres://db1/flows", true)]
    [InlineData("host=db1 dbname=flows", true)]
    [InlineData("dbname=flows", true)]
    [InlineData("/var/lib/vrmirror/flows.db", false)]
    [InlineData("flows.db", false)]
    [InlineData("size=3.db", false)]
    public void A_url_or_libpq_key_value_string_is_postgresql_and_anything_else_a_sqlite_path(string db, bool postgres) =>
        Assert.Equal(postgres, FlowStores.IsPostgres(db));

    [Fact]
    public void Url_gives_user_host_port_database_and_parameters()
    {
        var b = PostgresConnectionString.Parse("postgresql://vr%40m@db1.example:6432/fleet%20flows?sslmode=require&connect_timeout=7&application_name=agent-3");
        Assert.Equal("vr@m", b.Username);
        Assert.Equal("db1.example", b.Host);
        Assert.Equal(6432, b.Port);
        Assert.Equal("fleet flows", b.Database);
        Assert.Equal(Npgsql.SslMode.Require, b.SslMode);
        Assert.Equal(7, b.Timeout);
        Assert.Equal("agent-3", b.ApplicationName);
        Assert.Null(b.Password);
    }

    [Fact]
    public void Url_host_may_be_a_unix_socket_folder_percent_encoded_or_given_as_a_parameter_and_ipv6_in_brackets()
    {
        Assert.Equal("/run/postgresql", PostgresConnectionString.Parse("postgresql://vrmirror@%2Frun%2Fpostgresql/flows").Host);
        Assert.Equal("/run/postgresql", PostgresConnectionString.Parse("postgresql:///flows?host=/run/postgresql").Host);
        var v6 = PostgresConnectionString.Parse("postgresql://[2001:db8::5]:5433/flows");
        Assert.Equal("2001:db8::5", v6.Host);
        Assert.Equal(5433, v6.Port);
    }

    [Fact]
    public void Key_value_string_takes_quoted_values_and_escapes()
    {
        var b = PostgresConnectionString.Parse("host=/tmp/pg port=5433 user=vrmirror dbname='fleet \\'a\\'' sslmode=disable");
        Assert.Equal("/tmp/pg", b.Host);
        Assert.Equal(5433, b.Port);
        Assert.Equal("vrmirror", b.Username);
        Assert.Equal("fleet 'a'", b.Database);
        Assert.Equal(Npgsql.SslMode.Disable, b.SslMode);
    }

    [Theory]
    [InlineData("host=db1 colour=blue", "unknown connection parameter 'colour'")]
    [InlineData("postgresql://db1:99999/flows", "port '99999' must be 1..65535")]
    [InlineData("host=db1 dbname='flows", "no closing quote")]
    [InlineData("postgresql://db1,db2/flows", "several hosts")]
    [InlineData("postgresql://db1/flows?sslmode=maybe", "sslmode 'maybe'")]
    public void Bad_connection_strings_are_refused_saying_what_is_wrong(string db, string expected) =>
        Assert.Contains(expected, Assert.Throws<FormatException>(() => PostgresConnectionString.Parse(db)).Message);

    [Theory]
    [InlineData("postgresql://vrmirror:s3cret-pw@db1:6432/flows")]
    [InlineData("host=db1 port=6432 user=vrmirror password=s3cret-pw dbname=flows")]
    public void The_logged_form_never_has_the_password(string db)
    {
        var shown = FlowStores.Describe(db);
        Assert.Equal("postgresql://vrmirror@db1:6432/flows", shown);
        Assert.DoesNotContain("s3cret-pw", shown);
        Assert.Equal("s3cret-pw", PostgresConnectionString.Parse(db).Password);
    }

    [Fact]
    public void A_sqlite_path_is_described_as_it_is_and_made_absolute()
    {
        Assert.Equal("flows.db", FlowStores.Describe("flows.db"));
        Assert.Equal(Path.GetFullPath("flows.db"), FlowStores.Normalize("flows.db"));
        Assert.Equal("postgresql://db1/flows", FlowStores.Normalize("postgresql://db1/flows"));
    }
}
