"""`aftercare console add-user | list-users | remove-user` and `aftercare simulate` from the command line."""

from pathlib import Path

from click.testing import CliRunner

from aftercare.app import App
from aftercare.cli import cli
from aftercare.console import accounts

LOCAL_PLUGINS = Path(__file__).parent.parent / "runtime" / "local_plugins"


def config(tmp_path):
    path = tmp_path / "aftercare.toml"
    path.write_text(
        f'database = "sqlite:///aftercare.db"\nplugins_folder = "{LOCAL_PLUGINS}"\n\n[console]\nenabled = true\n\n'
        '[[shops]]\nid = "north"\nplatform = "memory"\nwebhook_secret = "s1"\n\n'
        '[[shops]]\nid = "south"\nplatform = "memory"\nwebhook_secret = "s2"\n'
    )
    return path


def run(path, *args, stdin=None):
    return CliRunner().invoke(cli, ["--config", str(path), *args], input=stdin)


def test_add_user_reads_the_password_from_stdin_and_stores_only_a_scrypt_hash(tmp_path):
    path = config(tmp_path)
    result = run(path, "console", "add-user", "nora", "--shops", "north", "--password-stdin",
                 stdin="a long passphrase\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "added console user nora (shops: north)" in result.output
    app = App.from_file(path)
    user = accounts.get_user(app.store, "nora")
    assert user.shops == ("north",) and user.password_hash.startswith("scrypt$32768$8$3$")
    assert "a long passphrase" not in user.password_hash
    assert accounts.authenticate(app.store, "nora", "a long passphrase") == user
    assert accounts.authenticate(app.store, "nora", "a wrong passphrase") is None
    assert accounts.authenticate(app.store, "nobody", "a long passphrase") is None
    app.close()
    assert "nora\tnorth" in run(path, "console", "list-users").output
    assert run(path, "console", "remove-user", "nora").exit_code == 0
    assert run(path, "console", "remove-user", "nora").exit_code == 2


def test_add_user_asks_twice_at_the_prompt_and_checks_the_shops(tmp_path):
    path = config(tmp_path)
    prompted = run(path, "console", "add-user", "ops", "--shops", "all", stdin="a long passphrase\na long passphrase\n")
    assert prompted.exit_code == 0 and "shops: all" in prompted.output
    unknown = run(path, "console", "add-user", "x", "--shops", "north,west", "--password-stdin", stdin="long enough!\n")
    assert unknown.exit_code == 2 and "no shop 'west'" in unknown.output
    short = run(path, "console", "add-user", "x", "--shops", "north", "--password-stdin", stdin="short\n")
    assert short.exit_code == 2 and "at least 10" in short.output


def test_simulate_prints_per_plugin_and_takes_another_config(tmp_path):
    path = config(tmp_path)
    assert run(path, "migrate").exit_code == 0
    result = run(path, "simulate", "--shop", "north", "--days", "30", "--json")
    assert result.exit_code == 2 and "north: no events stored since" in result.output  # and the shop is not polled
    assert run(path, "simulate", "--shop", "west").exit_code == 2
