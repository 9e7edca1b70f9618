"""MOS (mean opinion score) studies: build a blind rating study, serve it, analyse the ratings.

    python -m common.mos build --data DIR --scale 4 --method NAME=SPEC ... --out STUDY/
    python -m common.mos serve STUDY/ [--port 8000] [--host 127.0.0.1]
    python -m common.mos analyze STUDY/ [--json OUT]
"""
