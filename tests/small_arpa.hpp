// A small hand-written trigram model shared by the ARPA reader and n-gram LM tests
// (tests/io/test_arpa.cpp parses it, tests/decode/test_ngram.cpp scores it by hand).
#pragma once

namespace {

const char* const kModel = R"(\data\
ngram 1=6
ngram 2=4
ngram 3=2

\1-grams:
-1.0	<s>	-0.5
-0.7	a	-0.3
-0.8	b	-0.2
-0.9	c	-0.1
-1.2	</s>
-2.0	<unk>

\2-grams:
-0.4	<s> a	-0.25
-0.3	a b	-0.15
-0.6	b c
-0.5	b </s>

\3-grams:
-0.1	<s> a b
-0.2	a b c
\end\
)";

}  // namespace
