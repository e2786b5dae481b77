#!/usr/bin/env python3
"""Unused dependencies: for every crate of the workspace (and fuzz/), each dependency named
in its Cargo.toml ([dependencies] and [dev-dependencies]) must be used by name somewhere in
the crate's Rust sources (`name::`, `use name`, `name!`, `name as`): what cargo-machete
does, without an install step. Exit 1 naming each unused one.

A dependency that is needed only for its features or its linking (no path in the code) is
listed in IGNORED with the reason."""
import pathlib, re, sys, tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# crate dir -> {dependency: why it has no path in the code}
IGNORED: dict[str, dict[str, str]] = {}


def used(dep: str, texts: list[str]) -> bool:
    ident = dep.replace("-", "_")
    pat = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(ident)}(::|!|\s*;|\s*\{{|\s+as\s)")
    return any(pat.search(t) for t in texts)


def sources(crate: pathlib.Path, dirs: list[str]) -> list[str]:
    out = []
    for d in dirs:
        p = crate / d
        files = [p] if p.is_file() else sorted(p.rglob("*.rs")) if p.is_dir() else []
        out += [f.read_text(errors="replace") for f in files if not {"target", "corpus"} & set(f.relative_to(crate).parts)]
    return out


def main() -> int:
    manifests = sorted(ROOT.glob("**/Cargo.toml"))
    problems = []
    for m in manifests:
        if any(part in ("target", ".venv", "node_modules") for part in m.relative_to(ROOT).parts):
            continue
        doc = tomllib.loads(m.read_text())
        if "package" not in doc:
            continue
        crate = m.parent
        name = doc["package"]["name"]
        texts = sources(crate, ["."])
        for section in ("dependencies", "dev-dependencies"):
            for dep, spec in doc.get(section, {}).items():
                real = spec.get("package", dep) if isinstance(spec, dict) else dep
                if dep in IGNORED.get(str(crate.relative_to(ROOT)), {}):
                    continue
                if not used(dep, texts) and not used(real, texts):
                    problems.append(f"{m.relative_to(ROOT)} [{section}] {dep}: not used by {name}'s code")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} unused dependencies (remove them, or list them in IGNORED with the reason)")
        return 1
    print(f"no unused dependencies in {len(manifests)} manifests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
