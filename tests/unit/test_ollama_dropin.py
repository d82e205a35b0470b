"""Our service settings in a drop-in of our own; the user's override.conf is read, migrated only when ours."""

from __future__ import annotations

from harness import run_operation

from ollama_claude.ollama import config, dropin
from ollama_claude.settings import parse_settings

OLD_OURS = [
    "# Managed by ollama-claude: change group_data and re-run the deploy instead of editing this file.",
    "[Service]",
    'Environment="OLLAMA_HOST=127.0.0.1:11434"',
    'Environment="OLLAMA_CONTEXT_LENGTH=32000"',
    'Environment="OLLAMA_KEEP_ALIVE=30m"',
    "IPAddressDeny=any",
    "IPAddressAllow=localhost 10.0.0.0/8",
]
USERS = ["[Service]", 'Environment="OLLAMA_ORIGINS=*" "OLLAMA_NUM_PARALLEL=4"']
ENV = list(config.server_environment(parse_settings({}, "gpu1"), "nvidia"))


def test_our_drop_in_is_not_the_file_systemctl_edit_writes_and_sorts_after_it():
    assert config.DROP_IN_PATH != config.LEGACY_DROP_IN_PATH
    assert config.DROP_IN_PATH.startswith(config.DROP_IN_DIR + "/")
    # systemd applies drop-ins in file name order; the last assignment of a variable wins.
    assert config.DROP_IN_PATH > config.LEGACY_DROP_IN_PATH


def test_rendered_drop_in_carries_the_marker_on_its_first_line():
    assert config.drop_in({"OLLAMA_HOST": "127.0.0.1:11434"}, []).startswith(config.DROP_IN_MARKER)


def test_environment_lines_name_each_variable_even_several_on_one_line():
    assert config.drop_in_settings(USERS) == {"[Service]": [], "Environment": ["OLLAMA_ORIGINS", "OLLAMA_NUM_PARALLEL"]}


def test_an_earlier_versions_override_conf_is_removed():
    commands, _ = run_operation(dropin.legacy_drop_in_removed, {"FileContents": OLD_OURS},
                                path=config.LEGACY_DROP_IN_PATH, environment=ENV)
    assert commands == [f"rm -f {config.LEGACY_DROP_IN_PATH}"]


def test_the_users_override_conf_stays():
    commands, noops = run_operation(dropin.legacy_drop_in_removed, {"FileContents": USERS},
                                    path=config.LEGACY_DROP_IN_PATH, environment=ENV)
    assert commands == [] and "not ollama-claude's" in noops[0]


def test_our_old_file_with_a_users_setting_added_stays():
    """Removing it would lose OLLAMA_ORIGINS: the header alone does not make every line ours."""
    lines = [*OLD_OURS, 'Environment="OLLAMA_ORIGINS=*"']
    assert config.legacy_drop_in_leftovers(lines, dict.fromkeys(ENV)) == ["Environment OLLAMA_ORIGINS"]
    commands, _ = run_operation(dropin.legacy_drop_in_removed, {"FileContents": lines},
                                path=config.LEGACY_DROP_IN_PATH, environment=ENV)
    assert commands == []


def test_extras_we_were_asked_to_set_count_as_ours():
    lines = [*OLD_OURS, 'Environment="OLLAMA_FLASH_ATTENTION=1"']
    assert config.legacy_drop_in_leftovers(lines, dict.fromkeys([*ENV, "OLLAMA_FLASH_ATTENTION"])) == []


def test_absent_override_conf_is_a_noop():
    commands, noops = run_operation(dropin.legacy_drop_in_removed, {"FileContents": None},
                                    path=config.LEGACY_DROP_IN_PATH, environment=ENV)
    assert commands == [] and noops == [f"{config.LEGACY_DROP_IN_PATH} is absent"]


def test_drop_ins_fact_reads_every_conf_in_order():
    output = ["==> /d/override.conf", *USERS, "", "==> /d/zz-ollama-claude.conf", *OLD_OURS, ""]
    found = dropin.ServiceDropIns().process(output)
    assert list(found) == ["/d/override.conf", "/d/zz-ollama-claude.conf"]
    assert found["/d/override.conf"][:2] == USERS


def test_a_users_drop_in_setting_a_managed_variable_is_reported_with_who_wins():
    ours = config.DROP_IN_PATH
    before, after = config.LEGACY_DROP_IN_PATH, f"{config.DROP_IN_DIR}/zzz-mine.conf"
    clash = ["[Service]", 'Environment="OLLAMA_HOST=0.0.0.0:11434" "OLLAMA_ORIGINS=*"']
    warnings = dropin.override_warnings({before: clash, ours: OLD_OURS, after: clash}, ENV)
    assert len(warnings) == 2
    assert warnings[0].startswith(f"{before} sets OLLAMA_HOST, which ollama-claude manages") and "wins" in warnings[0]
    assert warnings[1] == f"{after} sets OLLAMA_HOST and sorts after {ours}, so its value wins over group_data's"
    assert dropin.override_warnings({before: USERS}, ENV) == []
