"""Spark and Trino for the lakehouse, installed by the project into a git-ignored cache
(`.engines/`, or $LAKEHOUSE_ENGINES): pyspark from PyPI (requirements-engines.txt, into the
project's .venv), and from Maven Central the Delta and Iceberg runtimes for Spark, the JDBC
drivers of the Iceberg catalogs, and the Trino server, each pinned by version and SHA-256.

`python -m devstack.engines install|status|jars` (`make engines`). Nothing here starts a JVM:
core/lake/spark.py starts Spark, tests/engines/trino.py starts Trino.

Like localdb, this module imports nothing from Django.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAVEN = os.environ.get("MAVEN_REPOSITORY", "https://repo1.maven.org/maven2").rstrip("/")
REQUIREMENTS = PROJECT_ROOT / "requirements-engines.txt"
SPARK_VERSION = "4.0.5"  # pyspark, pinned in requirements-engines.txt
TRINO_VERSION = "476"  # the newest trino-server Maven Central serves here; it needs Java 24+
TRINO_PLUGINS = ("iceberg",)  # the connectors kept of the 50 the server comes with


@dataclass(frozen=True)
class Artifact:
    group: str
    name: str
    version: str
    sha256: str
    extension: str = "jar"

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.{self.extension}"

    @property
    def url(self) -> str:
        return f"{MAVEN}/{self.group.replace('.', '/')}/{self.name}/{self.version}/{self.file_name}"


# Spark 4.0 (Scala 2.13). Delta 4.0 is the Delta line built on Spark 4.0; Iceberg 1.10 is the
# first with a Spark 4.0 runtime. The catalogs' drivers: SQLite for a warehouse folder's
# catalog.db, PostgreSQL for an s3:// warehouse's (the same tables pyiceberg's SqlCatalog uses).
# For S3 (s3a://): hadoop-aws of Spark 4.0's Hadoop (3.4.1), with the AWS SDK v2 classes from
# Iceberg's AWS bundle (62 MB, where the SDK's own bundle is 558 MB; Iceberg's S3FileIO uses
# it too) and the SDK's transfer manager of the same version (2.33.0), which hadoop-aws needs
# and the bundle leaves out.
SPARK_JARS = (
    Artifact(
        "io.delta",
        "delta-spark_2.13",
        "4.0.1",
        "a1e76860b19fe1e6b205a4ea7a9099a2f9575d39bb71d49b3e679b299d0efb91",
    ),
    Artifact(
        "io.delta",
        "delta-storage",
        "4.0.1",
        "ecc42c5aaa51c423312d9e4e48aa4a12b34740bf2c37de0e8f279277ec3d12e4",
    ),
    Artifact(
        "org.apache.iceberg",
        "iceberg-spark-runtime-4.0_2.13",
        "1.10.1",
        "2192a0881ed0f5773b5a83a8820d2b0b2069beec203028643a1c338551007f09",
    ),
    Artifact(
        "org.xerial",
        "sqlite-jdbc",
        "3.50.3.0",
        "a3f53a2aa15ae9425a9e793bbe9c8e5288febeb4b65ef5c1a4e80d4c2045cf08",
    ),
    Artifact(
        "org.postgresql",
        "postgresql",
        "42.7.8",
        "2a32a9dcbc42d67a50ad3a0de5efd102c8d2be46720045f2cbd6689f160ab7c7",
    ),
    Artifact(
        "org.apache.hadoop",
        "hadoop-aws",
        "3.4.1",
        "01334a07e179cae2b7e251f24857f11e3759108c9d6a79dcbe362a4295227da2",
    ),
    Artifact(
        "org.apache.iceberg",
        "iceberg-aws-bundle",
        "1.10.1",
        "86bf20892ea5b4c17688f19b075399885f6aa5303f6b2dc9f491e76ceef9633b",
    ),
    Artifact(
        "software.amazon.awssdk",
        "s3-transfer-manager",
        "2.33.0",
        "bebdf9c498828b8b07117887bf5fb9caa380a67f8406fa7598469e9b5c54cc43",
    ),
)
TRINO_SERVER = Artifact(
    "io.trino",
    "trino-server",
    TRINO_VERSION,
    "cfd5accde17e8ebd251eeeb78aed1f490e77bb3a164d95a0f454bf8a7c1cbd3f",
    "tar.gz",
)


PROGRESS_BYTES = 100 << 20  # a line per 100 MB of a big download


class EnginesError(RuntimeError):
    """A failure worth one line to the user."""


def cache_dir() -> Path:
    return Path(os.environ.get("LAKEHOUSE_ENGINES") or PROJECT_ROOT / ".engines")


def jar_paths() -> list[Path]:
    """The Spark jars, installed; EnginesError naming the command if one is missing."""
    paths = [cache_dir() / "jars" / jar.file_name for jar in SPARK_JARS]
    missing = [path.name for path in paths if not path.is_file()]
    if missing:
        raise EnginesError(
            f"Spark's jars are not installed ({missing[0]} missing): run `make engines`"
        )
    return paths


@dataclass(frozen=True)
class SparkRuntime:
    """What a Spark session needs from this machine: the jars, a Java it runs on, and, if
    either is missing, one line saying so and what to do."""

    jars: list[Path]
    java_home: Path | None
    missing: str | None = None


def spark_runtime() -> SparkRuntime:
    """The installed jars and a Java 17 or 21 (Spark 4.0's); the settings give this to the
    Spark apply (core/lake/spark.py)."""
    try:
        jars = jar_paths()
    except EnginesError as error:
        return SparkRuntime([], None, str(error))
    java = java_home(17, maximum=21)
    if java is None and shutil.which("java") is None:
        return SparkRuntime(
            jars,
            None,
            "Spark 4.0 needs Java 17 or 21, and none was found: install one (Debian: "
            "openjdk-17-jre-headless) or set JAVA_HOME",
        )
    return SparkRuntime(jars, java)


def trino_home() -> Path:
    return cache_dir() / f"trino-server-{TRINO_VERSION}"


def java_home(minimum: int, maximum: int = 99) -> Path | None:
    """A JDK from `minimum` to `maximum`: JAVA_HOME if it is one, else the newest in
    /usr/lib/jvm (Spark 4.0 runs on 17 and 21, Trino 476 on 24 and later)."""
    candidates = [Path(os.environ["JAVA_HOME"])] if os.environ.get("JAVA_HOME") else []
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted(jvm.iterdir(), key=java_version, reverse=True)
    for home in candidates:
        if (home / "bin" / "java").is_file() and minimum <= java_version(home) <= maximum:
            return home
    return None


def java_version(home: Path) -> int:
    release = home / "release"
    if not release.is_file():
        return 0
    for line in release.read_text().splitlines():
        if line.startswith("JAVA_VERSION="):
            text = line.split("=", 1)[1].strip('"')
            major = text.split(".")[0]
            return int(major) if major.isdigit() else 0
    return 0


def download(artifact: Artifact, into: Path) -> Path:
    """The artifact in `into`, fetched once and checked against its pinned SHA-256."""
    target = into / artifact.file_name
    if target.is_file():
        return target
    into.mkdir(parents=True, exist_ok=True)
    print(f"Downloading {artifact.url}", flush=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=into, prefix=".download-", delete=False) as partial:
        try:
            with urllib.request.urlopen(artifact.url, timeout=60) as response:
                size = int(response.headers.get("Content-Length") or 0)
                done = 0
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    partial.write(chunk)
                    done += len(chunk)
                    if (
                        size > PROGRESS_BYTES
                        and done // PROGRESS_BYTES > (done - len(chunk)) // PROGRESS_BYTES
                    ):
                        print(f"  {done >> 20:,} of {size >> 20:,} MB", flush=True)
        except OSError as error:
            Path(partial.name).unlink(missing_ok=True)
            raise EnginesError(f"could not download {artifact.url}: {error}") from None
    if digest.hexdigest() != artifact.sha256:
        Path(partial.name).unlink(missing_ok=True)
        raise EnginesError(
            f"{artifact.url} is not the file pinned (SHA-256 {digest.hexdigest()}, expected "
            f"{artifact.sha256}): check MAVEN_REPOSITORY"
        )
    os.chmod(partial.name, 0o644)  # a temporary file is its owner's only
    os.replace(partial.name, target)
    return target


def install_trino() -> Path:
    home = trino_home()
    if (home / "bin" / "launcher").is_file():
        return home
    tarball = download(TRINO_SERVER, cache_dir() / "downloads")
    print(f"Unpacking {tarball.name}", flush=True)
    unpacking = Path(tempfile.mkdtemp(dir=cache_dir(), prefix=".unpack-"))
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(unpacking, filter="data")
        plugins = unpacking / home.name / "plugin"
        for plugin in plugins.iterdir():
            if plugin.name not in TRINO_PLUGINS:  # each one slows the start down
                shutil.rmtree(plugin)
        os.replace(unpacking / home.name, home)
    finally:
        shutil.rmtree(unpacking, ignore_errors=True)
    tarball.unlink()  # 820 MB, unpacked now
    return home


def install_pyspark() -> None:
    try:
        import pyspark

        if pyspark.__version__ == SPARK_VERSION:
            return
    except ImportError:
        pass
    print(f"Installing pyspark {SPARK_VERSION} (about 430 MB)", flush=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)


def install(trino: bool = True) -> None:
    install_pyspark()
    for jar in SPARK_JARS:
        download(jar, cache_dir() / "jars")
    if trino:
        install_trino()


def status() -> list[str]:
    lines = []
    try:
        import pyspark

        lines.append(f"pyspark {pyspark.__version__}")
    except ImportError:
        lines.append("pyspark: not installed")
    for jar in SPARK_JARS:
        path = cache_dir() / "jars" / jar.file_name
        lines.append(f"{jar.file_name}: {'installed' if path.is_file() else 'missing'}")
    lines.append(
        f"trino-server {TRINO_VERSION}: "
        + ("installed" if (trino_home() / "bin" / "launcher").is_file() else "missing")
    )
    for user, versions in (("Spark", (17, 21)), ("Trino", (24, 99))):
        home = java_home(*versions)
        lines.append(f"Java for {user}: {home or 'not found'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.engines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    install_command = commands.add_parser(
        "install", help="pyspark, the Spark jars and the Trino server (once; then a no-op)"
    )
    install_command.add_argument("--no-trino", action="store_true", help="leave Trino out")
    commands.add_parser("status", help="what is installed, and the JDKs found")
    commands.add_parser("jars", help="the Spark jars, comma-separated (for spark-submit --jars)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install(trino=not args.no_trino)
            print(f"Spark {SPARK_VERSION} jars and Trino {TRINO_VERSION} in {cache_dir()}")
        elif args.command == "status":
            print("\n".join(status()))
        else:
            print(",".join(str(path) for path in jar_paths()))
    except (EnginesError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
