r"""A search engine for argilla-server that answers from the server's own SQL database.

Runs inside the argilla-server virtualenv only: it imports ``argilla_server`` and
``sqlalchemy`` from there, never anything of normloom's. Importing it registers the
engine under ``ENGINE_NAME``; the server picks it when ``ARGILLA_SEARCH_ENGINE`` names
it. The database already holds every record, response and suggestion, so the write
hooks do nothing and every read is a query.

Argilla stores JSON with ASCII escapes ("caf\\u00e9"), so text search decodes the
JSON in Python (a SQL function registered on each connection) and compares casefolded
NFC text; SQLite's own LIKE would miss non-ASCII text and fold only ASCII case.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from argilla_server.enums import (
    MetadataPropertyType,
    RecordSortField,
    ResponseStatusFilter,
)
from argilla_server.models import (
    Dataset,
    MetadataProperty,
    Record,
    Response,
    Suggestion,
    User,
)
from argilla_server.search_engine.base import (
    AndFilter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)
from argilla_server.settings import settings
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ENGINE_NAME = "normloom-sql"
RECORD_COLUMNS = {f.value for f in RecordSortField}

_engine: AsyncEngine | None = None


def _fold(value: str) -> str:
    return unicodedata.normalize("NFC", value).casefold()


def _strings(value: Any) -> Iterable[str]:
    """Yield every string inside a decoded JSON value (chat messages included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "role":
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def text_match(fields_json: str | None, field: str | None, query: str) -> int:
    """Tell whether every term of ``query`` occurs in the record's field text.

    Terms are split on whitespace and must all occur (an AND, as Argilla's
    Elasticsearch query does); quotes around a phrase keep it one term.
    """
    if not fields_json:
        return 0
    fields = json.loads(fields_json)
    value = fields.get(field) if field else fields
    haystack = _fold("\n".join(_strings(value)))
    return int(all(term in haystack for term in _terms(query)))


def _terms(query: str) -> list[str]:
    folded = _fold(query).strip()
    if len(folded) > 1 and folded[0] == folded[-1] == '"':
        return [folded[1:-1]]
    return [t.strip('"') for t in folded.split() if t.strip('"')]


def get_engine() -> AsyncEngine:
    """Return this process's database engine, created on first use."""
    global _engine
    if _engine is None:
        _engine = create_async_engine(
            settings.database_url, **settings.database_engine_args
        )
        event.listen(_engine.sync_engine, "connect", _on_connect)
    return _engine


def _on_connect(dbapi_connection, _record) -> None:
    dbapi_connection.create_function("nl_text_match", 3, text_match)


def _hex(value: UUID | str) -> str:
    """Return an id as SQLAlchemy stores a UUID in SQLite (32 hex digits)."""
    return UUID(str(value)).hex


class _Query:
    """Collects SQL conditions over ``records r`` and their bound parameters."""

    def __init__(self, dataset_id: UUID):
        self.params: dict[str, Any] = {"dataset_id": _hex(dataset_id)}
        self.where: list[str] = ["r.dataset_id = :dataset_id"]

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"

    def bind_list(self, values: Iterable[Any]) -> str:
        return "(" + ", ".join(self.bind(v) for v in values) + ")"

    def range_sql(self, expr: str, flt: RangeFilter) -> str:
        parts = []
        if flt.ge is not None:
            parts.append(f"CAST({expr} AS REAL) >= {self.bind(flt.ge)}")
        if flt.le is not None:
            parts.append(f"CAST({expr} AS REAL) <= {self.bind(flt.le)}")
        return " AND ".join(parts) or "1"

    def json_values_sql(
        self, column: str, flt: TermsFilter | RangeFilter, path: str | None = None
    ) -> str:
        """Match a JSON scalar or any element of a JSON array against a filter."""
        source = f"{column}, {self.bind(path)}" if path else column
        if isinstance(flt, TermsFilter):
            cond = f"je.value IN {self.bind_list(flt.values)}"
        else:
            cond = self.range_sql("je.value", flt)
        return f"EXISTS (SELECT 1 FROM json_each({source}) je WHERE {cond})"

    def filter_sql(self, flt) -> str:
        if isinstance(flt, AndFilter):
            parts = [self.filter_sql(f) for f in flt.filters]
            return "(" + " AND ".join(parts or ["1"]) + ")"
        scope = flt.scope
        if isinstance(scope, MetadataFilterScope):
            path = f'$."{scope.metadata_property}"'
            return self.json_values_sql("r.metadata", flt, path)
        if isinstance(scope, RecordFilterScope):
            return self._record_sql(scope.property, flt)
        if isinstance(scope, SuggestionFilterScope):
            return self._suggestion_sql(scope, flt)
        if isinstance(scope, ResponseFilterScope):
            return self._response_sql(scope, flt)
        raise ValueError(f"Cannot filter on scope {scope!r}")

    def _record_sql(self, prop: str, flt) -> str:
        if prop not in RECORD_COLUMNS:
            raise ValueError(f"Cannot filter records on {prop!r}")
        if isinstance(flt, TermsFilter):
            return f"r.{prop} IN {self.bind_list(flt.values)}"
        return self.range_sql(f"r.{prop}", flt)

    def _suggestion_sql(self, scope: SuggestionFilterScope, flt) -> str:
        question = self.bind(scope.question)
        if scope.property in ("value", "score"):
            cond = self.json_values_sql(f"s.{scope.property}", flt)
        elif isinstance(flt, TermsFilter) and scope.property in ("agent", "type"):
            cond = f"s.{scope.property} IN {self.bind_list(flt.values)}"
        else:
            raise ValueError(f"Cannot filter suggestions on {scope.property!r}")
        return (
            "EXISTS (SELECT 1 FROM suggestions s JOIN questions q ON q.id = "
            f"s.question_id WHERE s.record_id = r.id AND q.name = {question} "
            f"AND {cond})"
        )

    def _response_sql(self, scope: ResponseFilterScope, flt) -> str:
        user = (
            f" AND x.user_id = {self.bind(_hex(scope.user.id))}" if scope.user else ""
        )
        if scope.question:
            path = f'$."{scope.question}".value'
            cond = self.json_values_sql('x."values"', flt, path)
            return (
                "EXISTS (SELECT 1 FROM responses x WHERE x.record_id = r.id"
                f"{user} AND {cond})"
            )
        if scope.property != "status" or not isinstance(flt, TermsFilter):
            raise ValueError(f"Cannot filter responses on {scope.property!r}")
        parts = []
        statuses = [v for v in flt.values if v != ResponseStatusFilter.pending]
        if ResponseStatusFilter.pending in flt.values:
            # Pending means: this user (or, without a user, anyone) has not answered.
            parts.append(
                f"NOT EXISTS (SELECT 1 FROM responses x WHERE x.record_id = r.id{user})"
            )
        if statuses:
            parts.append(
                "EXISTS (SELECT 1 FROM responses x WHERE x.record_id = r.id"
                f"{user} AND x.status IN {self.bind_list(statuses)})"
            )
        return "(" + " OR ".join(parts or ["1"]) + ")"

    def order_sql(self, order: Order) -> str:
        direction = "DESC" if str(order.order) == "desc" else "ASC"
        scope = order.scope
        if isinstance(scope, RecordFilterScope):
            if scope.property not in RECORD_COLUMNS:
                raise ValueError(f"Cannot sort records on {scope.property!r}")
            return f"r.{scope.property} {direction}"
        if isinstance(scope, MetadataFilterScope):
            path = self.bind(f'$."{scope.metadata_property}"')
            return f"json_extract(r.metadata, {path}) {direction}"
        if isinstance(scope, SuggestionFilterScope):
            question = self.bind(scope.question)
            prop = (
                "json_extract(s.score, '$')"
                if scope.property == "score"
                else (f"s.{scope.property}")
            )
            return (
                f"(SELECT {prop} FROM suggestions s JOIN questions q ON q.id = "
                f"s.question_id WHERE s.record_id = r.id AND q.name = {question}) "
                f"{direction}"
            )
        if isinstance(scope, ResponseFilterScope):
            user = (
                f" AND x.user_id = {self.bind(_hex(scope.user.id))}"
                if scope.user
                else ""
            )
            if scope.question:
                path = self.bind(f'$."{scope.question}".value')
                expr = f'AVG(CAST(json_extract(x."values", {path}) AS REAL))'
            else:
                expr = f"MIN(x.{scope.property})"
            return (
                f"(SELECT {expr} FROM responses x WHERE x.record_id = r.id{user}) "
                f"{direction}"
            )
        raise ValueError(f"Cannot sort on scope {scope!r}")


@SearchEngine.register(engine_name=ENGINE_NAME)
class SQLSearchEngine(SearchEngine):
    """Search, progress and metrics answered by SQL over the server's database."""

    @classmethod
    async def new_instance(cls) -> SQLSearchEngine:
        """Return an engine bound to this process's database connection pool."""
        return cls()

    async def close(self) -> None:
        """Nothing to close: the connection pool lives as long as the process."""

    async def ping(self) -> bool:
        """Tell whether the database answers."""
        async with get_engine().connect() as conn:
            return (await conn.execute(text("SELECT 1"))).scalar() == 1

    async def info(self) -> dict:
        """Describe the engine for the server's /api/v1/status."""
        return {"distribution": ENGINE_NAME, "version": "1", "backend": "sqlite"}

    # The database is the index: every write hook has nothing to do.
    async def create_index(self, dataset: Dataset) -> None:
        """Do nothing: records are read from the database."""

    async def delete_index(self, dataset: Dataset) -> None:
        """Do nothing: records are read from the database."""

    async def configure_metadata_property(self, dataset, metadata_property) -> None:
        """Do nothing: metadata is read from the database."""

    async def configure_index_vectors(self, vector_settings) -> None:
        """Do nothing: vectors are not searched."""

    async def index_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        """Do nothing: records are read from the database."""

    async def partial_record_update(self, record: Record, **update) -> None:
        """Do nothing: records are read from the database."""

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        """Do nothing: records are read from the database."""

    async def update_record_response(self, response: Response) -> None:
        """Do nothing: responses are read from the database."""

    async def delete_record_response(self, response: Response) -> None:
        """Do nothing: responses are read from the database."""

    async def update_record_suggestion(self, suggestion: Suggestion) -> None:
        """Do nothing: suggestions are read from the database."""

    async def delete_record_suggestion(self, suggestion: Suggestion) -> None:
        """Do nothing: suggestions are read from the database."""

    async def _rows(self, sql: str, params: dict) -> list:
        async with get_engine().connect() as conn:
            return list(await conn.execute(text(sql), params))

    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        """Count the dataset's records by record status (pending / completed)."""
        if dataset.is_draft:
            return {}
        rows = await self._rows(
            "SELECT status, COUNT(*) FROM records WHERE dataset_id = :d "
            "GROUP BY status",
            {"d": _hex(dataset.id)},
        )
        counts = {str(status): n for status, n in rows}
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        """Count one user's responses in the dataset by response status."""
        if dataset.is_draft:
            return {}
        rows = await self._rows(
            "SELECT x.status, COUNT(*) FROM responses x JOIN records r ON r.id = "
            "x.record_id WHERE r.dataset_id = :d AND x.user_id = :u GROUP BY x.status",
            {"d": _hex(dataset.id), "u": _hex(user.id)},
        )
        counts = {str(status): n for status, n in rows}
        return {"total": sum(counts.values()), **counts}

    async def search(
        self,
        dataset: Dataset,
        query: TextQuery | str | None = None,
        filter=None,
        sort: list[Order] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: UUID | None = None,
    ) -> SearchResponses:
        """Return one page of the dataset's records that match a query and filter.

        Without a sort, records come in the order they were added (SQLite's rowid),
        so an annotator walks the turns of a dialogue in order.
        """
        q = _Query(dataset.id)
        if query is not None:
            query = TextQuery(q=query) if isinstance(query, str) else query
            q.where.append(
                f"nl_text_match(r.fields, {q.bind(query.field)}, {q.bind(query.q)})"
            )
        if filter is not None:
            q.where.append(q.filter_sql(filter))
        orders = [q.order_sql(o) for o in sort or []] + ["r.inserted_at", "r.rowid"]

        where = " AND ".join(q.where)
        total = (
            await self._rows(f"SELECT COUNT(*) FROM records r WHERE {where}", q.params)
        )[0][0]
        page = await self._rows(
            f"SELECT r.id FROM records r WHERE {where} ORDER BY {', '.join(orders)} "
            f"LIMIT {q.bind(limit)} OFFSET {q.bind(offset)}",
            q.params,
        )
        score = 1.0 if query is not None else None
        items = [
            SearchResponseItem(record_id=UUID(str(rid)), score=score) for (rid,) in page
        ]
        return SearchResponses(items=items, total=total)

    async def similarity_search(self, *args, **kwargs) -> SearchResponses:
        """Refuse: vectors are not indexed by this engine."""
        raise ValueError(
            f"Similarity search needs Elasticsearch or OpenSearch; the {ENGINE_NAME} "
            "engine searches text, metadata, suggestions and responses only."
        )

    async def compute_metrics_for(self, metadata_property: MetadataProperty):
        """Return the terms and counts, or the min and max, of one metadata property."""
        params = {
            "d": _hex(metadata_property.dataset_id),
            "path": f'$."{metadata_property.name}"',
        }
        if metadata_property.type == MetadataPropertyType.terms:
            rows = await self._rows(
                "SELECT je.value, COUNT(*) FROM records r, json_each(r.metadata, :path) je "
                "WHERE r.dataset_id = :d AND r.metadata IS NOT NULL GROUP BY je.value "
                "ORDER BY COUNT(*) DESC, je.value",
                params,
            )
            values = [TermsMetrics.TermCount(term=str(v), count=n) for v, n in rows]
            return TermsMetrics(total=sum(v.count for v in values), values=values)
        ((low, high),) = await self._rows(
            "SELECT MIN(CAST(json_extract(r.metadata, :path) AS REAL)), "
            "MAX(CAST(json_extract(r.metadata, :path) AS REAL)) FROM records r "
            "WHERE r.dataset_id = :d AND json_extract(r.metadata, :path) IS NOT NULL",
            params,
        )
        if metadata_property.type == MetadataPropertyType.integer:
            return IntegerMetadataMetrics(
                min=None if low is None else int(low),
                max=None if high is None else int(high),
            )
        return FloatMetadataMetrics(min=low, max=high)
