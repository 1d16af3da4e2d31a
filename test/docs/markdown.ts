/** The code block right after `<!-- example: name -->` in a markdown page (how docs mark code a test runs). */
export function exampleBlock(markdown: string, name: string): string {
  const match = new RegExp(`<!-- example: ${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(markdown);
  if (!match) throw new Error(`no example block "${name}"`);
  return match[1]!;
}
