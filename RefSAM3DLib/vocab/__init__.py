"""Structure vocabulary: canonical names, synonyms, SNOMED CT codes, colours; free text -> concept."""
