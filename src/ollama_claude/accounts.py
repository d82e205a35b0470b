"""
Accounts as the host's directory service knows them, and which account a macOS laptop's server runs as.

pyinfra's ``server.Users`` reads /etc/passwd, which on macOS lists only system accounts: laptop users live in
Open Directory (``dscl``), so every real user looked missing (../shared/reference/macos.md, "Accounts"). On
Linux ``getent passwd`` also answers for LDAP/sssd accounts that /etc/passwd does not hold.
"""

from __future__ import annotations

import posixpath
import shlex
from dataclasses import dataclass

from pyinfra import host
from pyinfra.api import FactBase

from .settings import ClaudeUser, Settings

#: The login shells the deploy writes rc blocks for; any other login shell is configured like bash.
KNOWN_SHELLS = ("bash", "zsh", "fish")


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    group: str  # the primary group's name
    home: str
    shell: str  # the login shell's path

    @property
    def shell_name(self) -> str:
        """bash, zsh or fish: which rc files the login shell reads (others read bash's)."""
        name = posixpath.basename(self.shell)
        return name if name in KNOWN_SHELLS else "bash"


def _lookup(name: str) -> str:
    """One account's ``name uid group home shell`` line from dscl (macOS) or getent (elsewhere); nothing if
    there is no such account."""
    n = shlex.quote(name)
    return (
        f'if [ "$(uname -s)" = Darwin ]; then '
        f"r=$(dscl . -read /Users/{n} UniqueID NFSHomeDirectory UserShell 2>/dev/null) && "
        "uid=$(printf '%s\\n' \"$r\" | awk '$1 == \"UniqueID:\" { print $2 }') && "
        "home=$(printf '%s\\n' \"$r\" | sed -n 's/^NFSHomeDirectory: //p') && "
        "sh=$(printf '%s\\n' \"$r\" | sed -n 's/^UserShell: //p'); "
        f"else r=$(getent passwd {n} 2>/dev/null || grep '^'{n}: /etc/passwd) && "
        "uid=$(printf '%s' \"$r\" | cut -d: -f3) && home=$(printf '%s' \"$r\" | cut -d: -f6) && "
        "sh=$(printf '%s' \"$r\" | cut -d: -f7); fi && [ -n \"$uid\" ] && "
        f"printf '%s\\t%s\\t%s\\t%s\\t%s\\n' {n} \"$uid\" \"$(id -gn {n})\" \"$home\" \"$sh\""
    )


class Accounts(FactBase[dict[str, Account]]):
    """The named accounts that exist, by name, in one command whatever their number."""

    default = dict

    def command(self, names: tuple[str, ...]) -> str:
        return "; ".join([*(f"{{ {_lookup(name)}; }}" for name in names), "true"])

    def process(self, output: list[str]) -> dict[str, Account]:
        accounts = {}
        for line in output:
            fields = line.split("\t")
            if len(fields) == 5 and fields[1].isdigit():
                name, uid, group, home, shell = fields
                accounts[name] = Account(name, int(uid), group, home, shell)
        return accounts


def own_account_field(field: int) -> str:
    """
    Shell: a field of the running user's own account (7: home, 8: login shell) from the account database (NSS on
    Linux, Open Directory on macOS), not from the environment: a systemd timer (pull mode) or a bare runner sets
    no HOME or SHELL.
    """
    return f"perl -e 'print((getpwuid $<)[{field}])'"


OWN_HOME, OWN_SHELL = own_account_field(7), own_account_field(8)


class ConnectionUser(FactBase[str]):
    """Who the deploy connected as: the SSH (or local) user, also when pyinfra runs this under sudo."""

    def command(self) -> str:
        return 'echo "${SUDO_USER:-$(id -un)}"'

    def process(self, output: list[str]) -> str:
        return output[0].strip() if output else ""


def claude_accounts(settings: Settings) -> dict[str, Account]:
    """The claude_users' accounts that exist on this host (one lookup for all of them, cached per run)."""
    return host.get_fact(Accounts, names=tuple(user.name for user in settings.claude_users))


def with_account(user: ClaudeUser, account: Account) -> ClaudeUser:
    """The user with home and shell taken from the account wherever claude_users leaves them out."""
    return user.model_copy(update={"home": user.home or account.home, "shell": user.shell or account.shell_name})


def declared_users(settings: Settings) -> list[tuple[ClaudeUser, Account | None]]:
    """Each of claude_users with its account (home and shell filled in from it), or None when it has none."""
    accounts = claude_accounts(settings)
    return [(with_account(user, accounts[user.name]), accounts[user.name]) if user.name in accounts else (user, None)
            for user in settings.claude_users]


def laptop_account_name(settings: Settings) -> str | None:
    """
    The macOS account whose LaunchAgent runs the server: ollama_macos_user, else the user the deploy connected
    as (also under sudo), else (connected as root, as MDM tools are) the first of claude_users.
    """
    if settings.ollama_macos_user:
        return settings.ollama_macos_user
    connected = host.get_fact(ConnectionUser)
    if connected and connected != "root":
        return connected
    return settings.claude_users[0].name if settings.claude_users else None


def laptop_account(settings: Settings) -> Account | str:
    """The laptop's server account, or why there is none (the reason names the setting to fix)."""
    name = laptop_account_name(settings)
    if name is None:
        return ("connected as root and no account to run Ollama as: set ollama_macos_user (or list the laptop's "
                "user in claude_users)")
    if any(user.name == name for user in settings.claude_users):  # as usual: the lookup of them all, made anyway
        account = claude_accounts(settings).get(name)
    else:
        account = host.get_fact(Accounts, names=(name,)).get(name)
    if account is None:
        return f"ollama_macos_user: no account {name!r} on this Mac (dscl . -read /Users/{name} finds none)"
    return account
