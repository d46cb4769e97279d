"""A tldr-like history for git fast-import: N_FILES files in pages/common (one big directory),
23,000 commits each changing 1-3 files, a side branch merged every 50 commits.

    python3 generate.py [N_FILES] | git fast-import --quiet
"""
import random, sys
rng = random.Random(7)
N_FILES, N_COMMITS = int(sys.argv[1]) if len(sys.argv) > 1 else 3000, 23000
out = sys.stdout.buffer
def w(s): out.write(s.encode() if isinstance(s, str) else s)
t = 1_500_000_000
mark = 0
def blob(text):
    global mark
    mark += 1
    data = text.encode()
    w(f"blob\nmark :{mark}\ndata {len(data)}\n"); w(data); w("\n")
    return mark
# initial commit with all files
marks = {}
for i in range(N_FILES):
    marks[i] = blob(f"# page {i}\n\n> tool {i}\n\n- example: `cmd {i}`\n")
w(f"commit refs/heads/main\ncommitter A <a@x> {t} +0000\ndata 4\ninit\n")
for i in range(N_FILES):
    w(f"M 100644 :{marks[i]} pages/common/p{i:05}.md\n")
w("\n")
side_open = False
for c in range(1, N_COMMITS):
    t += rng.randint(0, 120)
    changes = []
    for _ in range(rng.randint(1, 3)):
        i = 42 if rng.random() < 0.001 else rng.randrange(N_FILES)
        changes.append((i, blob(f"# page {i}\n\nrev {c}\n\n- example: `cmd {i} --v{c}`\n")))
    branch = "side" if (c % 50) in range(10, 20) else "main"
    if branch == "side" and not side_open:
        w(f"reset refs/heads/side\nfrom refs/heads/main\n\n"); side_open = True
    w(f"commit refs/heads/{branch}\ncommitter A <a@x> {t} +0000\ndata 2\nc\n")
    if branch == "main" and side_open:
        w("merge refs/heads/side\n"); side_open = False
    for i, m in changes:
        w(f"M 100644 :{m} pages/common/p{i:05}.md\n")
    w("\n")
