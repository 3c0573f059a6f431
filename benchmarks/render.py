"""Renders benchmarks/results/*.json as the tables between the markers in benchmarks/README.md."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def table(rows: list[dict]) -> str:
    # Lists and mappings (samples, per-step breakdowns) stay in the JSON; the table shows the scalars.
    columns = list(dict.fromkeys(key for row in rows for key in row if not isinstance(row[key], (list, dict))))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parts = []
    for name in ("parse_cost", "orchestration", "scaling", "fleet", "sql_scaling"):
        path = HERE / "results" / f"{name}.json"
        if not path.exists():
            parts.append(f"### {name}\n\nnot measured yet (`bash benchmarks/run_all.sh`).")
            continue
        result = json.loads(path.read_text())
        parts.append(
            f"### {name}\n\n{result['machine']}, {result['date']}; {result['notes']}\n\n{table(result['rows'])}"
        )
    readme = HERE / "README.md"
    text = readme.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{(chr(10) * 2).join(parts)}\n{END}{tail}")
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
