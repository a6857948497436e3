"""The import benchmarks' CSV file: unique addresses and phone numbers, names from short lists, two tags, a status;
about 100 bytes a row. Usage: python3 Benchmarks/import_rows.py <path> <rows>"""
import sys

path, rows = sys.argv[1], int(sys.argv[2])
given = ["John", "Jane", "Mary", "Maria", "Ahmed", "Wei", "Yuki", "Olga", "Pierre", "Hans", "Sofia", "Lucas", "Emma", "Noah"]
family = ["Smith", "Johnson", "Garcia", "Müller", "Dubois", "Rossi", "Tanaka", "Wang", "Ivanov", "O'Brien", "Nguyen", "Kowalski"]
status = ["LEAD", "PROSPECT", "CUSTOMER", "INACTIVE"]
with open(path, "w", encoding="utf-8", newline="") as f:
    f.write("name.given,name.family,emails,phones,tags,status\r\n")
    for i in range(1, rows + 1):
        g, fa = given[i % len(given)], family[(i // 14) % len(family)]
        f.write(f"{g},{fa},{g.lower()}.{i}@example{i % 97}.com,+1 555 {i % 10000000:07d},tag{i % 50}; segment{i % 7},{status[i % 4]}\r\n")
