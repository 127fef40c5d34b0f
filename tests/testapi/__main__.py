from testapi.runner import main

main()
