/** Names for the generated types: frames by their `action`, REST bodies by their schema. */
export {};
//# sourceMappingURL=types.js.map