"""The fabrik tables: who ran what, with which seed, dataset, model and trainer.

Names, columns and ``add_entry`` keywords follow nnfabrik so that its
tutorials read the same.  A config row's key is ``(<kind>_fn, <kind>_hash)``
where the hash is the canonical hash of the config (:mod:`nntransfer.hashing`),
so the same configuration is never stored, nor trained, twice.
"""

from __future__ import annotations

import getpass

from ..configs.functions import split_table_options
from ..db import import_datajoint
from ..errors import DatabaseError, FabrikantError
from ..hashing import from_jsonable
from .restrictions import SafeRestriction

dj = import_datajoint()

schema = dj.Schema()

_ENTRIES: dict = {}
"""Config rows read by :meth:`ConfigTable.get_entry`: ``{(server, table): {(fn, hash): row}}``.

A config never changes under its hash (a different config under an existing
key is refused on insert), so a row read once stays right; deleting it
deletes what was trained from it, so no job asks for it again.  Only its
comment can change, when the row is edited or deleted and inserted again:
an insert or update through this process forgets the table's rows; another
process's edit of a comment is seen by the next process.
"""
ENTRIES_KEPT = 4096


_USERS: dict = {}


def _database_user(connection) -> str:
    """The connection's database user as the server names it, asked once per server and login."""
    info = connection.conn_info
    login = (info.get("host"), info.get("port"), info.get("user"))
    if login not in _USERS:
        _USERS[login] = connection.get_user()
    return _USERS[login]


@schema
class Fabrikant(SafeRestriction, dj.Manual):
    definition = """
    # people who add entries and train models
    fabrikant_name: varchar(32)   # short name, referenced by the other tables
    ---
    full_name = "": varchar(128)
    email = "": varchar(128)
    affiliation = "": varchar(128)
    dj_username: varchar(64)      # database user name
    """

    @classmethod
    def get_current_user(cls) -> str:
        """The fabrikant of the current database user, added on first use.

        nnfabrik failed when the user was missing; a new user of a fresh
        database should not have to fill a table before their first entry.
        """
        username = _database_user(cls.connection).split("@")[0] or getpass.getuser()
        rows = (cls & {"dj_username": username}).to_dicts()
        if rows:
            return rows[0]["fabrikant_name"]
        name = username[:32]
        cls.insert1({"fabrikant_name": name, "dj_username": username}, skip_duplicates=True)
        return name

    @classmethod
    def resolve(cls, name: str | None) -> str:
        if name is None:
            return cls.get_current_user()
        if not (cls & {"fabrikant_name": name}):
            known = sorted(row["fabrikant_name"] for row in cls.to_dicts())
            raise FabrikantError(
                f"Fabrikant {name!r} is not in the Fabrikant table (known: {known}). Add them with "
                "Fabrikant().insert1({'fabrikant_name': ..., 'dj_username': ...}) or leave the "
                "fabrikant out to use the current database user."
            )
        return name


@schema
class Seed(SafeRestriction, dj.Manual):
    definition = """
    # random seeds; every training is repeated for each seed it is populated with
    seed: int32
    """


FN_LENGTH = 128
COMMENT_LENGTH = 256


HASHING_MARK = "[keys: nnfabrik's make_hash]"
"""Written into the comment of config tables that key their rows with nnfabrik's hash."""


def _config_definition(kind: str, hashing: str = "canonical") -> str:
    mark = f" {HASHING_MARK}" if hashing == "nnfabrik" else ""
    what = "nnfabrik's make_hash of the configuration as given" if hashing == "nnfabrik" else "canonical hash of the configuration"
    return f"""
    # {kind} functions and their configurations{mark}
    {kind}_fn: varchar({FN_LENGTH})     # dotted path of the {kind} function
    {kind}_hash: char(32)       # {what}
    ---
    {kind}_config: json         # keyword arguments of the function
    -> Fabrikant.proj({kind}_fabrikant='fabrikant_name')
    {kind}_comment = "": varchar({COMMENT_LENGTH})
    {kind}_ts = CURRENT_TIMESTAMP: datetime
    """


class ConfigTable(SafeRestriction):
    """Behaviour shared by Dataset, Model and Trainer (a mixin, not a table).

    ``hashing`` is how the table keys its rows (:data:`nntransfer.hashing.HASHINGS`):
    ``"canonical"`` (the default: the config completed with the function's
    defaults, hashed as canonical JSON) or ``"nnfabrik"`` (nnfabrik's
    ``make_hash`` of the config as given, no completion; the tables of
    :func:`nntransfer.nnfabrik.main.my_nnfabrik` choose it).  The choice is
    written into the table's comment when it is declared, and a table class
    with the other choice is refused on that table, so one schema never mixes
    the two.
    """

    kind: str = ""
    hashing: str = "canonical"

    def check_hashing(self) -> None:
        """Refuse to write keys of one hashing into a table declared with the other."""
        declared = "nnfabrik" if HASHING_MARK in (self.heading.table_status or {}).get("comment", "") else "canonical"
        if declared != self.hashing:
            raise DatabaseError(
                f"{self.full_table_name} keys its rows with {declared} hashes, but {type(self).__name__} writes "
                f"{self.hashing} ones; use the table classes this schema was made with "
                f"({'nntransfer.nnfabrik.main.my_nnfabrik' if declared == 'nnfabrik' else 'nntransfer.activate'})."
            )

    def add_entry(self, fn=None, config=None, fabrikant=None, comment="", skip_duplicates=False, **named):
        """Insert a configuration; return its key.

        Keywords follow nnfabrik: ``dataset_fn=…, dataset_config=…,
        dataset_fabrikant=…, dataset_comment=…`` (or ``model_…`` / ``trainer_…``).
        The function is imported first and the config is completed with the
        function's defaults and checked against its signature, so a typo fails
        here and not hours later in a worker, and the same effective
        configuration always gets the same key.  Inserting the same configuration again is a no-op
        that returns the existing key (``skip_duplicates`` is accepted for
        nnfabrik compatibility); a different configuration under the same key
        is an error.
        """
        k = self.kind
        fn = named.pop(f"{k}_fn", fn)
        config = named.pop(f"{k}_config", config)
        fabrikant = named.pop(f"{k}_fabrikant", fabrikant)
        comment = named.pop(f"{k}_comment", comment)
        if named:
            raise TypeError(
                f"{type(self).__name__}.add_entry got unknown keywords {sorted(named)}; it takes "
                f"{k}_fn, {k}_config, {k}_fabrikant, {k}_comment and skip_duplicates."
            )
        if fn is None:
            raise TypeError(f"{type(self).__name__}.add_entry needs {k}_fn (a dotted function path).")
        from .insertion import complete_config, new_config_rows, write_rows

        key, row = complete_config(self, fn, config, comment)
        write_rows(self.connection, [(self, row) for row in new_config_rows(self, [row])], fabrikant)
        return key

    def get_entry(self, key: dict) -> tuple[str, dict, str]:
        """Return ``(fn, config, comment)`` of the entry that ``key`` selects, in one query the first time.

        A key with this table's function and hash is read once per process
        (see :data:`_ENTRIES`): a worker or a search reads the same few rows
        for every job, twice per job (DataJoint's three-part make fetches
        before and after training).
        """
        k = self.kind
        fn_name, hash_name = f"{k}_fn", f"{k}_hash"
        identity = None
        if isinstance(key, dict) and isinstance(key.get(fn_name), str) and isinstance(key.get(hash_name), str):
            identity = (key[fn_name], key[hash_name])
        entries = _ENTRIES.setdefault(self._entries_key(), {})
        entry = entries.get(identity) if identity is not None else None
        if entry is None:
            entry = (self & key).fetch1(fn_name, f"{k}_config", f"{k}_comment")
            if identity is not None:
                if len(entries) >= ENTRIES_KEPT:
                    entries.clear()
                entries[identity] = entry
        fn, stored, comment = entry
        return fn, from_jsonable(stored), comment

    def _entries_key(self) -> tuple:
        info = self.connection.conn_info
        return info.get("host"), info.get("port"), self.full_table_name

    def insert(self, rows, *args, **kwargs):
        """DataJoint's insert; the rows :meth:`get_entry` read from this table are read again afterwards."""
        _ENTRIES.pop(self._entries_key(), None)
        return super().insert(rows, *args, **kwargs)

    def update1(self, row):
        """DataJoint's update1 (a new comment); the rows :meth:`get_entry` read from this table are read again."""
        _ENTRIES.pop(self._entries_key(), None)
        return super().update1(row)

    def get_config(self, key: dict) -> tuple[str, dict]:
        """Return ``(fn, config)`` of the entry that ``key`` selects, as stored."""
        return self.get_entry(key)[:2]

    def function_config(self, key: dict) -> tuple[str, dict]:
        """Return ``(fn, keywords)``: the stored config without the table's own options.

        Options such as a model config's ``transfer`` are read by the table
        layer, so they are taken out here, before the builder calls the function.
        """
        fn, config = self.get_config(key)
        return fn, split_table_options(fn, self.kind, config)[0]


@schema
class Dataset(ConfigTable, dj.Manual):
    kind = "dataset"
    definition = _config_definition("dataset")

    def get_dataloader(self, seed: int, key: dict | None = None):
        """Build the dataloaders of one entry (nnfabrik's method)."""
        from ..builder import get_data

        fn, config = self.get_config(key or {})
        return get_data(fn, config, seed)


@schema
class Model(ConfigTable, dj.Manual):
    kind = "model"
    definition = _config_definition("model")

    def build_model(self, dataloaders, seed: int, key: dict | None = None):
        from ..builder import get_model

        fn, config = self.function_config(key or {})
        return get_model(fn, config, dataloaders, seed)


@schema
class Trainer(ConfigTable, dj.Manual):
    kind = "trainer"
    definition = _config_definition("trainer")

    def get_trainer(self, key: dict | None = None):
        from ..builder import get_trainer

        fn, config = self.get_config(key or {})
        return get_trainer(fn, config)


CONFIG_TABLES = {"dataset": Dataset, "model": Model, "trainer": Trainer}


def table_for_kind(kind: str):
    """The config table of ``kind`` ("dataset", "model" or "trainer")."""
    try:
        return CONFIG_TABLES[kind]
    except KeyError:
        raise ValueError(f"Unknown config kind {kind!r}; use one of {sorted(CONFIG_TABLES)}.") from None
