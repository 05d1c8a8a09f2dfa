"""Function tools: how they are asked for (`plan`), the formats models write calls in
(`formats`), and a streamed answer that may be a call (`answer_stream`)."""
