# Shared by the README generators (source it): replace_section NAME FILE replaces the README block from the line
# starting with "<!-- NAME" through the line "<!-- /NAME -->" with the contents of FILE (which carries both markers).
replace_section() {
  local name=$1 file=$2 out
  out=$(mktemp)
  if ! grep -q "^<!-- $name" README.md || ! grep -q "^<!-- /$name -->" README.md; then
    echo "README.md has no <!-- $name --> ... <!-- /$name --> block" >&2
    return 1
  fi
  awk -v section="$file" -v op="^<!-- $name" -v cl="^<!-- /$name -->" '
    $0 ~ op && !skip { while ((getline line < section) > 0) print line; skip = 1; next }
    skip && $0 ~ cl { skip = 0; next }
    !skip { print }
  ' README.md > "$out"
  mv "$out" README.md
}
